//! Appends with group commit from several threads until killed, printing `ACK <lsn> <doc_id>`
//! after each append returns (i.e. is durable). Usage: wal-crash-child DIR ROUND WRITERS

use std::io::Write;
use std::sync::{Arc, Mutex};

use replication_core::wal::{Durability, Wal, WalOptions};
use replication_process_tests::{doc_id, record};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: wal-crash-child DIR ROUND WRITERS");
        std::process::exit(2);
    }
    let round: u32 = args[2].parse().expect("ROUND is a number");
    let writers: u32 = args[3].parse().expect("WRITERS is a number");
    let mut opts = WalOptions::new(&args[1]);
    opts.durability = Durability::EveryCommit;
    opts.segment_size_bytes = 256 * 1024;
    opts.compression.min_batch_bytes = 512;
    let wal = match Wal::open(opts) {
        Ok(w) => Arc::new(w),
        Err(e) => {
            eprintln!("open failed: {e}");
            std::process::exit(3);
        }
    };
    let out = Arc::new(Mutex::new(std::io::stdout()));
    writeln!(out.lock().unwrap(), "READY").unwrap();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let (wal, out) = (wal.clone(), out.clone());
            std::thread::spawn(move || {
                for seq in 0.. {
                    let lsn = match wal.append(&record(round, w, seq)) {
                        Ok(lsn) => lsn,
                        Err(e) => {
                            eprintln!("append failed: {e}");
                            std::process::exit(4);
                        }
                    };
                    let mut o = out.lock().unwrap();
                    writeln!(o, "ACK {lsn} {}", doc_id(round, w, seq)).unwrap();
                    o.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}
