//! The JSON Lines file sink: one record per line, rotation by size keeping `keep` files,
//! nothing lost across a rotation, and a file it cannot write is a transient failure.

use remediation_audit::{AuditSink, JsonlFileSink, read_jsonl};
use remediation_core::DeliveryError;

use crate::support::chain;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
}

#[test]
fn records_rotate_by_size_and_none_is_lost_within_what_is_kept() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("trail.jsonl");
    let records = chain(60);
    let line = serde_json::to_vec(&records[0]).expect("json").len() as u64 + 1;
    // About ten records per file, three rotated files kept.
    let sink = JsonlFileSink::new(&path, line * 10, 3);
    for batch in records.chunks(7) {
        block_on(AuditSink::deliver(&sink, batch)).expect("written");
    }
    let mut files: Vec<std::path::PathBuf> =
        (1..=3).rev().map(|n| dir.path().join(format!("trail.jsonl.{n}"))).collect();
    files.push(path.clone());
    assert!(!dir.path().join("trail.jsonl.4").exists(), "only `keep` rotated files");
    let mut kept = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a kept file");
        assert!(text.len() as u64 <= line * 10 + line, "{} is {} bytes", file.display(), text.len());
        kept.extend(read_jsonl(text.as_bytes()).expect("every line a record"));
    }
    // The oldest rotated away; the rest are the chain's tail, in order, without a gap.
    let first = kept[0].seq;
    assert!(first > 1, "rotation dropped the oldest files");
    assert_eq!(kept.iter().map(|r| r.seq).collect::<Vec<_>>(), (first..=60).collect::<Vec<_>>());
    assert!(remediation_audit::verify_chain(kept.clone()).first_break.is_none_or(|b| b.position == 1));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "owner only");
    }
}

#[test]
fn a_file_it_cannot_write_is_a_transient_failure_and_nothing_is_counted_delivered() {
    let dir = tempfile::tempdir().expect("dir");
    // A directory where the file should be: every write fails until it is moved away.
    let path = dir.path().join("trail.jsonl");
    std::fs::create_dir(&path).expect("in the way");
    let sink = JsonlFileSink::new(&path, 1 << 20, 2);
    let records = chain(3);
    let err = block_on(AuditSink::deliver(&sink, &records)).expect_err("cannot open");
    assert_eq!(err.delivered, 0);
    assert!(matches!(&err.error, DeliveryError::Transient { reason, .. } if reason.contains("trail.jsonl")), "{err:?}");
    std::fs::remove_dir(&path).expect("out of the way");
    block_on(AuditSink::deliver(&sink, &records)).expect("written once it can");
    let text = std::fs::read_to_string(&path).expect("file");
    assert_eq!(read_jsonl(text.as_bytes()).expect("records"), records);
}
