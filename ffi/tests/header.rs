//! The committed C header must be exactly what cbindgen generates from this crate.
//!
//! Regenerate after changing the C API:
//!   REPL_UPDATE_HEADER=1 cargo test -p replication-ffi --test header

use std::path::{Path, PathBuf};

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn header_path() -> PathBuf {
    crate_dir().join("../include/replication.h")
}

fn generate() -> String {
    let config = cbindgen::Config::from_file(crate_dir().join("cbindgen.toml"))
        .unwrap_or_else(|e| panic!("ffi/cbindgen.toml is unusable: {e}"));
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir())
        .with_config(config)
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen failed on ffi/: {e}"));
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("cbindgen writes UTF-8")
}

#[test]
fn committed_header_matches_generated() {
    let fresh = generate();
    let path = header_path();
    if std::env::var_os("REPL_UPDATE_HEADER").is_some_and(|v| v == "1") {
        if std::fs::read_to_string(&path).ok().as_deref() != Some(fresh.as_str()) {
            std::fs::write(&path, &fresh)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            eprintln!("rewrote {}", path.display());
        }
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == fresh {
        return;
    }
    let (line, ours, theirs) = committed
        .lines()
        .map(Some)
        .chain(std::iter::repeat(None))
        .zip(fresh.lines().map(Some).chain(std::iter::repeat(None)))
        .take_while(|(a, b)| a.is_some() || b.is_some())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| {
            (
                i + 1,
                a.unwrap_or("<end of file>"),
                b.unwrap_or("<end of file>"),
            )
        })
        .unwrap_or((0, "", "(only line endings differ)"));
    panic!(
        "include/replication.h is out of date with ffi/src (first difference at line {line}:\n  \
         committed: {ours}\n  generated: {theirs})\n\
         Regenerate it with: REPL_UPDATE_HEADER=1 cargo test -p replication-ffi --test header"
    );
}

/// Every result code the header declares has its own message: catches a variant added to the
/// enum but forgotten in `repl_result::ALL`.
#[test]
fn every_declared_result_code_has_a_message() {
    let fresh = generate();
    let decl = fresh
        .find("enum repl_result\n")
        .expect("header declares enum repl_result");
    let start = decl + fresh[decl..].find(" {\n").expect("enum body starts");
    let body = &fresh[start..start + fresh[start..].find("};").expect("enum ends")];
    let mut seen = 0;
    for line in body.lines().map(str::trim) {
        let Some((name, value)) = line.trim_end_matches(',').split_once(" = ") else {
            continue;
        };
        let code: u32 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad enumerator: {line}"));
        let mut buf = [0 as std::ffi::c_char; 256];
        let mut len = 0usize;
        // SAFETY: valid buffer and out-pointer.
        let rc =
            unsafe { replication::repl_error_message(code, buf.as_mut_ptr(), buf.len(), &mut len) };
        assert_eq!(rc, replication::repl_result::REPL_OK);
        let text: String = buf[..len].iter().map(|&c| c as u8 as char).collect();
        assert!(
            !text.starts_with("unknown"),
            "{name} = {code} has no message: {text}"
        );
        seen += 1;
    }
    assert_eq!(seen, replication::repl_result::ALL.len());
}
