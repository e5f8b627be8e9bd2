//! Zero fill ahead of the active segment: files of an open WAL run past their data with zeros,
//! recovery reads that tail as the clean end, damage inside it is still caught, and sealing or
//! closing a segment trims it.

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use replication_core::wal::{
    Durability, RecoveryMode, Wal, WalError, WalOptions, FRAME_HEADER_LEN,
};

fn zero_filled(dir: &Path) -> WalOptions {
    let mut o = no_compression(opts(dir));
    o.durability = Durability::EveryCommit;
    o.zero_fill_ahead = true;
    o
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

/// Waits until the filler has zero-filled `path` to at least `len` bytes.
fn wait_for_len(path: &Path, len: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while file_len(path) < len {
        assert!(
            Instant::now() < deadline,
            "{} never reached {len} bytes (is {})",
            path.display(),
            file_len(path)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Copies the segment files of an open WAL as they are on disk: what a crash leaves.
fn crash_copy(from: &Path, to: &Path) -> Vec<PathBuf> {
    let mut copied = Vec::new();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name.to_str().unwrap().ends_with(".wal") {
            let dst = to.join(&name);
            std::fs::copy(e.path(), &dst).unwrap();
            copied.push(dst);
        }
    }
    copied.sort();
    copied
}

/// A crash image of `live` (see `crash_copy`) with `bytes` written at `offset` of its first
/// segment: the damage a crash or a bad disk leaves inside the zero fill.
fn damaged_crash_copy(live: &Path, bytes: &[u8], offset: u64) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    let files = crash_copy(live, copy.path());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .unwrap();
    f.write_all_at(bytes, offset).unwrap();
    copy
}

/// An open, zero-filled WAL holding records 1..=n (durable), and its one segment file.
fn filled_wal(dir: &Path, n: u64) -> (Wal, PathBuf) {
    let wal = Wal::open(zero_filled(dir)).unwrap();
    for i in 1..=n {
        wal.append(&rec(i)).unwrap();
    }
    let seg = wal.segment_paths().unwrap()[0].clone();
    wait_for_len(&seg, 1 << 20);
    (wal, seg)
}

/// Start offsets of the frames in a segment file, and where its data ends (the zeros start).
fn frames(file: &[u8]) -> (Vec<usize>, usize) {
    let mut starts = Vec::new();
    let mut o = replication_core::wal::SEGMENT_HEADER_LEN;
    while o + FRAME_HEADER_LEN <= file.len()
        && file[o..o + FRAME_HEADER_LEN].iter().any(|&b| b != 0)
    {
        starts.push(o);
        let len = u32::from_le_bytes(file[o..o + 4].try_into().unwrap()) as usize;
        o += FRAME_HEADER_LEN + len;
    }
    (starts, o)
}

fn data_len(file: &[u8]) -> usize {
    frames(file).1
}

#[test]
fn an_open_segment_runs_ahead_with_zeros_and_close_trims_them() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, seg) = filled_wal(dir.path(), 50);
    let bytes = std::fs::read(&seg).unwrap();
    let data = data_len(&bytes);
    assert!(bytes.len() > data + (1 << 20), "zero fill is ahead");
    assert!(bytes[data..].iter().all(|&b| b == 0), "the fill is zeros");
    // Appends keep landing where the data ends, not after the zeros.
    wal.append(&rec(51)).unwrap();
    assert_eq!(read_all_from(&wal, 1).len(), 51);
    wal.close().unwrap();
    let after = std::fs::read(&seg).unwrap();
    assert_eq!(data_len(&after), after.len(), "close trimmed the zeros");
    let wal = Wal::open(zero_filled(dir.path())).unwrap();
    let all = read_all_from(&wal, 1);
    assert_eq!(all.len(), 51);
    all.iter().zip(1..).for_each(|(r, i)| assert_rec(r, i));
}

fn read_all_from(wal: &Wal, from: u64) -> Vec<replication_core::Record> {
    wal.read_from(from).unwrap().map(|r| r.unwrap()).collect()
}

#[test]
fn a_crash_image_with_a_zero_tail_recovers_every_record_in_both_modes() {
    let live = tempfile::tempdir().unwrap();
    let (wal, _) = filled_wal(live.path(), 200);
    for mode in [
        RecoveryMode::TolerateTornTail,
        RecoveryMode::AbsoluteConsistency,
    ] {
        let copy = tempfile::tempdir().unwrap();
        let files = crash_copy(live.path(), copy.path());
        assert!(
            file_len(&files[0]) > 1 << 20,
            "the image holds the zero fill"
        );
        let mut o = zero_filled(copy.path());
        o.recovery_mode = mode;
        let reopened = Wal::open(o.clone()).unwrap();
        assert_eq!(reopened.last_lsn(), 200, "{mode:?}");
        // Appending after recovery writes over the zeros, and everything reads back.
        reopened.append(&rec(201)).unwrap();
        drop(reopened);
        let again = Wal::open(o).unwrap();
        let all = read_all_from(&again, 1);
        assert_eq!(all.len(), 201, "{mode:?}");
        all.iter().zip(1..).for_each(|(r, i)| assert_rec(r, i));
    }
    drop(wal);
}

#[test]
fn a_torn_frame_inside_the_zero_fill_is_truncated_or_refused() {
    let live = tempfile::tempdir().unwrap();
    let (wal, seg) = filled_wal(live.path(), 20);
    let bytes = std::fs::read(&seg).unwrap();
    let (starts, data) = frames(&bytes);
    // The last frame, written again half-way just after the data: a write cut off by a crash.
    let last = *starts.last().unwrap();
    let half = &bytes[last..last + (data - last) / 2 + FRAME_HEADER_LEN / 2];
    for cut_header in [false, true] {
        // A header torn across a page boundary: only its first bytes landed.
        let torn: &[u8] = if cut_header { &half[..12] } else { half };
        let copy = damaged_crash_copy(live.path(), torn, data as u64);
        let mut strict = zero_filled(copy.path());
        strict.recovery_mode = RecoveryMode::AbsoluteConsistency;
        match Wal::open(strict) {
            Err(WalError::Corrupt { offset, .. }) => assert_eq!(offset, data as u64),
            other => panic!("strict mode accepted a torn frame: {:?}", other.map(|_| ())),
        }
        let wal = Wal::open(zero_filled(copy.path())).unwrap();
        assert_eq!(wal.last_lsn(), 20, "cut_header {cut_header}");
        wal.append(&rec(21)).unwrap();
        let all = read_all_from(&wal, 1);
        all.iter().zip(1..).for_each(|(r, i)| assert_rec(r, i));
        assert_eq!(all.len(), 21);
    }
    drop(wal);
}

#[test]
fn data_after_zeros_is_damage_not_an_end() {
    let live = tempfile::tempdir().unwrap();
    let (wal, seg) = filled_wal(live.path(), 20);
    let data = data_len(&std::fs::read(&seg).unwrap()) as u64;
    let copy = damaged_crash_copy(live.path(), b"not zero", data + 300_000);
    // Even the tolerant mode refuses: bytes after a gap are not a torn tail.
    match Wal::open(zero_filled(copy.path())) {
        Err(WalError::Corrupt { offset, reason, .. }) => {
            assert_eq!(offset, data);
            assert!(reason.contains("zeroed frame header"), "{reason}");
        }
        other => panic!(
            "zeros followed by data were accepted: {:?}",
            other.map(|_| ())
        ),
    }
    drop(wal);
}

#[test]
fn sealed_segments_hold_only_their_frames() {
    let dir = tempfile::tempdir().unwrap();
    let seg_size = 64 * 1024;
    let mut o = zero_filled(dir.path());
    o.segment_size_bytes = seg_size;
    let wal = Wal::open(o.clone()).unwrap();
    let mut i = 0;
    for _ in 0..4 {
        // Let the filler fill the active segment to its full size, then append past it.
        let active = wal.segment_paths().unwrap().last().unwrap().clone();
        wait_for_len(&active, seg_size);
        let segments = wal.segment_count().unwrap();
        while wal.segment_count().unwrap() == segments {
            i += 1;
            wal.append(&rec(i)).unwrap();
        }
    }
    let paths = wal.segment_paths().unwrap();
    assert!(paths.len() >= 5);
    for p in &paths[..paths.len() - 1] {
        let bytes = std::fs::read(p).unwrap();
        assert_eq!(data_len(&bytes), bytes.len(), "{} was trimmed", p.display());
        assert!(bytes.len() as u64 <= seg_size);
    }
    drop(wal);
    let wal = Wal::open(o).unwrap();
    let all = read_all_from(&wal, 1);
    assert_eq!(all.len() as u64, i);
    all.iter().zip(1..).for_each(|(r, i)| assert_rec(r, i));
}

#[test]
fn truncation_and_reset_keep_working_on_zero_filled_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = filled_wal(dir.path(), 100);
    wal.truncate_after(60).unwrap();
    assert_eq!(wal.last_lsn(), 60);
    for i in 61..=80 {
        assert_eq!(wal.append(&rec(i)).unwrap(), i);
    }
    wal.reset_to(1000).unwrap();
    assert_eq!(wal.append(&rec(1000)).unwrap(), 1000);
    drop(wal);
    let wal = Wal::open(zero_filled(dir.path())).unwrap();
    assert_eq!((wal.first_lsn(), wal.last_lsn()), (1000, 1000));
}
