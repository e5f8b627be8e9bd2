//! WAL behaviour: round trips, rotation, truncation, purge, timestamps, recovery.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use common::*;
use replication_core::wal::{Durability, RecoveryMode, Wal, WalError, WalOptions};
use replication_core::HlcTimestamp;

fn read_all(wal: &Wal, from: u64) -> Vec<replication_core::Record> {
    wal.read_from(from).unwrap().map(|r| r.unwrap()).collect()
}

#[test]
fn append_read_reopen_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(opts(dir.path())).unwrap();
        assert_eq!(wal.last_lsn(), 0);
        for i in 1..=500 {
            assert_eq!(wal.append(&rec(i)).unwrap(), i);
        }
        let (a, b) = wal
            .append_batch(&(501..=600).map(rec).collect::<Vec<_>>())
            .unwrap();
        assert_eq!((a, b), (501, 600));
        let all = read_all(&wal, 1);
        assert_eq!(all.len(), 600);
        all.iter().zip(1..).for_each(|(r, i)| assert_rec(r, i));
        wal.close().unwrap();
        assert!(matches!(wal.append(&rec(1)), Err(WalError::Closed)));
    }
    let wal = Wal::open(opts(dir.path())).unwrap();
    assert_eq!((wal.first_lsn(), wal.last_lsn()), (1, 600));
    let tail = read_all(&wal, 350);
    assert_eq!(tail.len(), 251);
    tail.iter().zip(350..).for_each(|(r, i)| assert_rec(r, i));
    assert_eq!(wal.append(&rec(601)).unwrap(), 601);
}

#[test]
fn compressed_and_uncompressed_frames_read_back_identically() {
    for compress in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path());
        o.compression.enabled = compress;
        o.compression.min_batch_bytes = 64;
        let wal = Wal::open(o).unwrap();
        for chunk in (1..=1000u64).collect::<Vec<_>>().chunks(37) {
            wal.append_batch(&chunk.iter().map(|&i| rec(i)).collect::<Vec<_>>())
                .unwrap();
        }
        let paths = wal.segment_paths().unwrap();
        let all = read_all(&wal, 1);
        all.iter().zip(1..).for_each(|(r, i)| assert_rec(r, i));
        // Closing trims the zero fill ahead of the last frame, leaving only data.
        wal.close().unwrap();
        let size: u64 = paths
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        if compress {
            assert!(size < 60_000, "compressed WAL is {size} bytes");
        } else {
            assert!(size > 60_000, "uncompressed WAL is {size} bytes");
        }
    }
}

#[test]
fn rotation_spreads_records_over_segments_and_reads_cross_them() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(no_compression(small_segments(dir.path(), 8192))).unwrap();
    for i in 1..=2000 {
        wal.append(&rec(i)).unwrap();
    }
    assert!(
        wal.segment_count().unwrap() > 10,
        "{} segments",
        wal.segment_count().unwrap()
    );
    for start in [1, 2, 777, 1999, 2000] {
        let got = read_all(&wal, start);
        assert_eq!(got.len() as u64, 2001 - start);
        got.iter().zip(start..).for_each(|(r, i)| assert_rec(r, i));
    }
    let mid: Vec<_> = wal
        .read_range(100, 200)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(mid.len(), 100);
    wal.close().unwrap();
    drop(wal);
    let wal = Wal::open(no_compression(small_segments(dir.path(), 8192))).unwrap();
    assert_eq!(read_all(&wal, 1).len(), 2000);
}

#[test]
fn read_out_of_range_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(opts(dir.path())).unwrap();
    wal.append(&rec(1)).unwrap();
    assert!(matches!(
        wal.read_from(0),
        Err(WalError::LsnOutOfRange { .. })
    ));
    assert!(matches!(
        wal.read_range(1, 5),
        Err(WalError::LsnOutOfRange { .. })
    ));
    assert_eq!(
        read_all(&wal, 2).len(),
        0,
        "reading from last+1 yields nothing"
    );
}

#[test]
fn truncate_after_inside_a_frame_and_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let o = no_compression(small_segments(dir.path(), 16384));
    let wal = Wal::open(o.clone()).unwrap();
    for chunk in (1..=3000u64).collect::<Vec<_>>().chunks(10) {
        wal.append_batch(&chunk.iter().map(|&i| rec(i)).collect::<Vec<_>>())
            .unwrap();
    }
    let segs_before = wal.segment_count().unwrap();
    wal.truncate_after(1234).unwrap(); // inside the frame 1231..=1240
    assert_eq!(wal.last_lsn(), 1234);
    assert!(wal.segment_count().unwrap() < segs_before);
    let all = read_all(&wal, 1);
    assert_eq!(all.len(), 1234);
    all.iter().zip(1..).for_each(|(r, i)| assert_rec(r, i));
    // New appends continue densely after the cut, and survive a reopen.
    for i in 1235..=1300 {
        assert_eq!(wal.append(&rec(i)).unwrap(), i);
    }
    wal.close().unwrap();
    drop(wal);
    let wal = Wal::open(o).unwrap();
    let all = read_all(&wal, 1);
    assert_eq!(all.len(), 1300);
    all.iter().zip(1..).for_each(|(r, i)| assert_rec(r, i));
    wal.truncate_after(0).unwrap();
    assert_eq!(wal.last_lsn(), 0);
    assert_eq!(wal.append(&rec(1)).unwrap(), 1);
}

#[test]
fn purge_before_removes_whole_old_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let o = no_compression(small_segments(dir.path(), 8192));
    let wal = Wal::open(o.clone()).unwrap();
    for i in 1..=2000 {
        wal.append(&rec(i)).unwrap();
    }
    let n = wal.segment_count().unwrap();
    let removed = wal.purge_before(1000).unwrap();
    assert!(removed > 0 && removed < n);
    let first = wal.first_lsn();
    assert!(first <= 1000 && first > 1, "first = {first}");
    assert!(matches!(
        wal.read_from(first - 1),
        Err(WalError::LsnOutOfRange { .. })
    ));
    let rest = read_all(&wal, first);
    rest.iter().zip(first..).for_each(|(r, i)| assert_rec(r, i));
    // Purging everything keeps the active segment.
    wal.purge_before(u64::MAX).unwrap();
    assert_eq!(wal.segment_count().unwrap(), 1);
    wal.close().unwrap();
    drop(wal);
    let wal = Wal::open(o).unwrap();
    assert_eq!(wal.last_lsn(), 2000);
    let first = wal.first_lsn();
    read_all(&wal, first)
        .iter()
        .zip(first..)
        .for_each(|(r, i)| assert_rec(r, i));
}

#[test]
fn find_lsn_by_timestamp_finds_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(no_compression(small_segments(dir.path(), 8192))).unwrap();
    for chunk in (1..=3000u64).collect::<Vec<_>>().chunks(3) {
        wal.append_batch(&chunk.iter().map(|&i| rec(i)).collect::<Vec<_>>())
            .unwrap();
    }
    // rec(i).hlc = 1_000_000 + 10 i
    assert_eq!(wal.find_lsn_by_timestamp(HlcTimestamp(0)).unwrap(), Some(1));
    assert_eq!(
        wal.find_lsn_by_timestamp(HlcTimestamp(1_000_010)).unwrap(),
        Some(1)
    );
    assert_eq!(
        wal.find_lsn_by_timestamp(HlcTimestamp(1_000_011)).unwrap(),
        Some(2)
    );
    assert_eq!(
        wal.find_lsn_by_timestamp(HlcTimestamp(1_012_345)).unwrap(),
        Some(1235)
    );
    assert_eq!(
        wal.find_lsn_by_timestamp(HlcTimestamp(1_030_000)).unwrap(),
        Some(3000)
    );
    assert_eq!(
        wal.find_lsn_by_timestamp(HlcTimestamp(1_030_001)).unwrap(),
        None
    );
}

#[test]
fn group_commit_many_threads_dense_lsns_and_all_durable() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.durability = Durability::EveryCommit;
    let wal = Arc::new(Wal::open(o.clone()).unwrap());
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                (0..200u64)
                    .map(|k| {
                        let mut r = rec(1);
                        r.doc_id = format!("{t}-{k}").into();
                        let lsn = wal.append(&r).unwrap();
                        assert!(wal.durable_lsn() >= lsn, "acked before durable");
                        (lsn, r.doc_id)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acked: Vec<(u64, std::sync::Arc<str>)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    acked.sort();
    assert_eq!(acked.len(), 1600);
    assert!(acked.iter().zip(1..).all(|((lsn, _), i)| *lsn == i));
    let back: Vec<_> = read_all(&wal, 1)
        .into_iter()
        .map(|r| (r.lsn, std::sync::Arc::<str>::from(r.doc_id)))
        .collect();
    assert_eq!(back, acked);
}

#[test]
fn interval_durability_syncs_in_background() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.durability = Durability::Interval(std::time::Duration::from_millis(20));
    let wal = Wal::open(o).unwrap();
    let lsn = wal.append(&rec(1)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while wal.durable_lsn() < lsn {
        assert!(
            std::time::Instant::now() < deadline,
            "interval sync never happened"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _wal = Wal::open(opts(dir.path())).unwrap();
    let err = Wal::open(opts(dir.path()))
        .err()
        .expect("second open must fail");
    assert!(matches!(err, WalError::Locked { .. }), "{err}");
}

#[test]
fn invalid_records_and_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.segment_size_bytes = 10;
    assert!(matches!(Wal::open(o), Err(WalError::InvalidOptions(_))));
    let wal = Wal::open(opts(dir.path())).unwrap();
    let mut r = rec(1);
    r.collection = "c".repeat(70_000).into();
    assert!(matches!(wal.append(&r), Err(WalError::InvalidRecord(_))));
    assert!(matches!(
        wal.append_batch(&[]),
        Err(WalError::InvalidRecord(_))
    ));
    assert_eq!(wal.last_lsn(), 0, "failed appends assign no LSN");
}

/// Writes `n` single-record frames into a fresh WAL and returns the path of its one segment.
/// Each append is written out on its own (`sync`): appends between two write-outs would share
/// a frame.
fn single_segment_wal(dir: &std::path::Path, n: u64) -> std::path::PathBuf {
    let wal = Wal::open(no_compression(opts(dir))).unwrap();
    for i in 1..=n {
        wal.append(&rec(i)).unwrap();
        wal.sync().unwrap();
    }
    wal.close().unwrap();
    let p = wal.segment_paths().unwrap()[0].clone();
    drop(wal);
    p
}

#[test]
fn torn_tail_cut_at_every_byte_recovers_exactly_the_frames_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let seg = single_segment_wal(dir.path(), 20);
    let full = std::fs::read(&seg).unwrap();
    let frames = frame_offsets(&full);
    let last_start = *frames.last().unwrap();
    for cut in last_start..full.len() {
        std::fs::write(&seg, &full[..cut]).unwrap();
        let wal = Wal::open(no_compression(opts(dir.path()))).unwrap();
        assert_eq!(wal.last_lsn(), 19, "cut at {cut}");
        let all = read_all(&wal, 1);
        assert_eq!(all.len(), 19);
        all.iter().zip(1..).for_each(|(r, i)| assert_rec(r, i));
        drop(wal);
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), last_start as u64);
        // AbsoluteConsistency refuses the same file instead of repairing it.
        std::fs::write(&seg, &full[..cut]).unwrap();
        if cut > last_start {
            let mut o = no_compression(opts(dir.path()));
            o.recovery_mode = RecoveryMode::AbsoluteConsistency;
            assert!(
                matches!(Wal::open(o), Err(WalError::Corrupt { .. })),
                "cut at {cut}"
            );
        }
    }
}

/// Byte offsets of each frame in a segment file image.
fn frame_offsets(file: &[u8]) -> Vec<usize> {
    let mut offs = Vec::new();
    let mut o = replication_core::wal::SEGMENT_HEADER_LEN;
    while o < file.len() {
        offs.push(o);
        let len = u32::from_le_bytes(file[o..o + 4].try_into().unwrap()) as usize;
        o += replication_core::wal::FRAME_HEADER_LEN + len;
    }
    offs
}

#[test]
fn appends_between_write_outs_share_one_frame_and_batches_never_split() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(opts(dir.path())).unwrap();
    for i in 1..=10 {
        wal.append(&rec(i)).unwrap();
    }
    wal.append_batch(&(11..=15).map(rec).collect::<Vec<_>>())
        .unwrap();
    wal.sync().unwrap();
    wal.append(&rec(16)).unwrap();
    wal.close().unwrap();
    let seg = wal.segment_paths().unwrap()[0].clone();
    let full = std::fs::read(&seg).unwrap();
    // Records 1..=15 were written out together: one frame; record 16 by `close`: another.
    let frames = frame_offsets(&full);
    assert_eq!(frames.len(), 2, "frames at {frames:?}");
    let count_at = |o: usize| u32::from_le_bytes(full[o + 12..o + 16].try_into().unwrap());
    assert_eq!((count_at(frames[0]), count_at(frames[1])), (15, 1));
    drop(wal);
    let wal = Wal::open(opts(dir.path())).unwrap();
    let all = read_all(&wal, 1);
    assert_eq!(all.len(), 16);
    all.iter().zip(1..).for_each(|(r, i)| assert_rec(r, i));

    // Small segments cap a frame at an eighth of a segment, so rotation stays near the size;
    // a batch larger than that stays whole in one frame.
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(no_compression(small_segments(dir.path(), 4096))).unwrap();
    for i in 1..=40 {
        wal.append(&rec(i)).unwrap();
    }
    wal.append_batch(&(41..=60).map(rec).collect::<Vec<_>>())
        .unwrap();
    wal.close().unwrap();
    let mut frames_seen = 0;
    for p in wal.segment_paths().unwrap() {
        let img = std::fs::read(&p).unwrap();
        for o in frame_offsets(&img) {
            let body = u32::from_le_bytes(img[o..o + 4].try_into().unwrap()) as usize;
            let count = u32::from_le_bytes(img[o + 12..o + 16].try_into().unwrap());
            assert!(
                body <= 4096 / 8 || count == 20,
                "frame of {body} bytes, {count} records"
            );
            frames_seen += 1;
        }
    }
    assert!(frames_seen > 2);
    drop(wal);
    let wal = Wal::open(opts(dir.path())).unwrap();
    assert_eq!(read_all(&wal, 1).len(), 60);
}

#[test]
fn every_single_bit_flip_in_a_frame_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let seg = single_segment_wal(dir.path(), 3);
    let full = std::fs::read(&seg).unwrap();
    let frames = frame_offsets(&full);
    // Flip every bit of the middle frame: never returned as valid, always an error with offset.
    let (start, end) = (frames[1], frames[2]);
    for bit in (start * 8)..(end * 8) {
        let mut img = full.clone();
        img[bit / 8] ^= 1 << (bit % 8);
        std::fs::write(&seg, &img).unwrap();
        match Wal::open(no_compression(opts(dir.path()))) {
            Err(WalError::Corrupt { offset, path, .. }) => {
                assert_eq!(offset, start as u64, "bit {bit}");
                assert_eq!(path, seg);
            }
            Err(e) => panic!("bit {bit}: unexpected error {e}"),
            Ok(_) => panic!("bit {bit}: flip in a middle frame went undetected"),
        }
    }
    // The last frame: dropped as a torn tail or refused as corrupt, never returned as valid.
    let start = frames[2];
    for bit in (start * 8)..(full.len() * 8) {
        let mut img = full.clone();
        img[bit / 8] ^= 1 << (bit % 8);
        std::fs::write(&seg, &img).unwrap();
        let mut strict = no_compression(opts(dir.path()));
        strict.recovery_mode = RecoveryMode::AbsoluteConsistency;
        assert!(
            Wal::open(strict).is_err(),
            "bit {bit} undetected in strict mode"
        );
        std::fs::write(&seg, &img).unwrap();
        match Wal::open(no_compression(opts(dir.path()))) {
            Ok(wal) => {
                let all = read_all(&wal, 1);
                assert_eq!(all.len(), 2, "bit {bit}");
                all.iter().zip(1..).for_each(|(r, i)| assert_rec(r, i));
            }
            Err(WalError::Corrupt { offset, .. }) => assert_eq!(offset, start as u64),
            Err(e) => panic!("bit {bit}: unexpected error {e}"),
        }
    }
}

#[test]
fn corruption_in_an_older_segment_is_an_error_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let o = no_compression(small_segments(dir.path(), 8192));
    let paths = {
        let wal = Wal::open(o.clone()).unwrap();
        for i in 1..=500 {
            wal.append(&rec(i)).unwrap();
        }
        wal.close().unwrap();
        wal.segment_paths().unwrap()
    };
    assert!(paths.len() > 2);
    let victim = &paths[1];
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(victim)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, 300).unwrap();
    f.write_all_at(&[b[0] ^ 0x01], 300).unwrap();
    let err = Wal::open(o).err().expect("corruption must be reported");
    match &err {
        WalError::Corrupt { path, offset, .. } => {
            assert_eq!(path, victim);
            assert!(*offset <= 300);
        }
        other => panic!("unexpected {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&victim.display().to_string()) && msg.contains("offset"),
        "{msg}"
    );
}

#[test]
fn torn_segment_creation_is_removed_on_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let o = no_compression(small_segments(dir.path(), 8192));
    let next = {
        let wal = Wal::open(o.clone()).unwrap();
        for i in 1..=100 {
            wal.append(&rec(i)).unwrap();
        }
        wal.close().unwrap();
        let paths = wal.segment_paths().unwrap();
        let last = paths.last().unwrap();
        let id: u64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        last.with_file_name(format!("{:020}.wal", id + 1))
    };
    std::fs::write(&next, [0u8; 10]).unwrap();
    let wal = Wal::open(o).unwrap();
    assert_eq!(wal.last_lsn(), 100);
    assert!(!next.exists());
    assert_eq!(wal.append(&rec(101)).unwrap(), 101);
}

#[test]
fn garbage_file_with_a_segment_name_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("00000000000000000001.wal"),
        b"this is not a wal segment at all, clearly",
    )
    .unwrap();
    let err = Wal::open(opts(dir.path())).err().unwrap();
    assert!(err.to_string().contains("not a WAL segment"), "{err}");
}

#[test]
fn options_default_is_durable() {
    let o = WalOptions::new("/tmp/x");
    assert_eq!(o.durability, Durability::EveryCommit);
    assert_eq!(o.segment_size_bytes, 64 << 20);
}

#[test]
fn truncate_with_pending_unwritten_records() {
    // Durability::None leaves appends pending in memory; truncation must write them first.
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(opts(dir.path())).unwrap();
    for i in 1..=50 {
        wal.append(&rec(i)).unwrap();
    }
    wal.truncate_after(30).unwrap();
    assert_eq!(wal.last_lsn(), 30);
    wal.append(&rec(31)).unwrap();
    let all = read_all(&wal, 1);
    assert_eq!(all.len(), 31);
    all.iter().zip(1..).for_each(|(r, i)| assert_rec(r, i));
}

#[test]
fn dropping_the_last_handle_releases_the_directory_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.durability = Durability::Interval(std::time::Duration::from_secs(30));
    let wal = Wal::open(o.clone()).unwrap();
    wal.append(&rec(1)).unwrap();
    drop(wal);
    let wal = Wal::open(o).expect("reopen right after drop");
    assert_eq!(wal.last_lsn(), 1, "drop writes what was pending");
}

#[test]
fn close_ends_iterators_and_frees_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(opts(dir.path())).unwrap();
    for i in 1..=10 {
        wal.append(&rec(i)).unwrap();
    }
    let mut it = wal.read_from(1).unwrap();
    assert_rec(&it.next().unwrap().unwrap(), 1);
    wal.close().unwrap();
    let reopened = Wal::open(opts(dir.path())).expect("close releases the lock");
    assert!(matches!(it.next(), Some(Err(WalError::Closed))));
    assert!(it.next().is_none());
    assert_eq!(reopened.last_lsn(), 10);
}

#[test]
fn purged_segments_are_not_held_open() {
    // Without syncing (Durability::None) the WAL must not keep a descriptor per old segment:
    // purged files would keep their disk space and dirty pages.
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(no_compression(small_segments(dir.path(), 8192))).unwrap();
    for i in 1..=3000 {
        wal.append(&rec(i)).unwrap();
    }
    assert!(wal.segment_count().unwrap() > 20);
    wal.purge_before(wal.last_lsn()).unwrap();
    let deleted_open = || {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
            .filter(|target| {
                target.starts_with(dir.path()) && target.to_string_lossy().ends_with("(deleted)")
            })
            .count()
    };
    // The zero-fill thread may be finishing a round (its own short-lived descriptor) on a
    // segment that rotated and was purged meanwhile; what must not happen is a descriptor
    // that stays.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while deleted_open() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(deleted_open(), 0, "purged segment files are still open");
    wal.sync().unwrap();
    assert_eq!(wal.durable_lsn(), 3000);
}

#[test]
fn reset_to_continues_at_a_new_lsn_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let o = no_compression(small_segments(dir.path(), 8192));
    let wal = Wal::open(o.clone()).unwrap();
    for i in 1..=500 {
        wal.append(&rec(i)).unwrap();
    }
    wal.reset_to(1001).unwrap();
    assert_eq!((wal.first_lsn(), wal.last_lsn()), (1001, 1000));
    assert_eq!(wal.segment_count().unwrap(), 1);
    for i in 1001..=1100 {
        assert_eq!(wal.append(&rec(i)).unwrap(), i);
    }
    wal.close().unwrap();
    drop(wal);
    let wal = Wal::open(o).unwrap();
    assert_eq!((wal.first_lsn(), wal.last_lsn()), (1001, 1100));
    let all = read_all(&wal, 1001);
    all.iter().zip(1001..).for_each(|(r, i)| assert_rec(r, i));
}

#[test]
fn an_interrupted_reset_is_finished_by_recovery() {
    // Simulate a crash after the reset segment was created but before the old ones were
    // deleted: copy the old segments back next to the new one.
    let dir = tempfile::tempdir().unwrap();
    let o = no_compression(small_segments(dir.path(), 8192));
    let wal = Wal::open(o.clone()).unwrap();
    for i in 1..=300 {
        wal.append(&rec(i)).unwrap();
    }
    let old: Vec<(std::path::PathBuf, Vec<u8>)> = wal
        .segment_paths()
        .unwrap()
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    wal.reset_to(5000).unwrap();
    wal.append(&rec(5000)).unwrap();
    wal.close().unwrap();
    drop(wal);
    for (p, b) in &old[1..] {
        std::fs::write(p, b).unwrap();
    }
    let wal = Wal::open(o).unwrap();
    assert_eq!((wal.first_lsn(), wal.last_lsn()), (5000, 5000));
    assert_eq!(wal.segment_count().unwrap(), 1);
    assert_rec(&read_all(&wal, 5000)[0], 5000);
}
