//! journalctl's export format (`journalctl -o export`: `NAME=text` lines, binary fields as
//! `NAME\n` + 64-bit little-endian length + bytes + `\n`, entries separated by an empty line),
//! parsed incrementally, then formatted as fail2ban formats a journal entry.
//!
//! Oracle: the same bytes pushed at once and pushed in chunks (sizes from the first byte) give
//! the same entries: where the pipe cuts the stream never changes what is read.

#![no_main]

use ferroban_source::journal::{ExportParser, format_entry};
use libfuzzer_sys::fuzz_target;

fn entries(parser: &mut ExportParser, out: &mut Vec<Vec<(Vec<u8>, Vec<u8>)>>) {
    while let Some(e) = parser.next_entry() {
        let _ = format_entry(e);
        out.push(e.fields().map(|(k, v)| (k.to_vec(), v.to_vec())).collect());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let mut whole = Vec::new();
    let mut p = ExportParser::new();
    p.push(stream);
    entries(&mut p, &mut whole);

    let chunk = usize::from(chunk % 64) + 1;
    let mut pieces = Vec::new();
    let mut q = ExportParser::new();
    for c in stream.chunks(chunk) {
        q.push(c);
        entries(&mut q, &mut pieces);
    }
    assert_eq!(whole, pieces, "chunks of {chunk} bytes change the entries");
    assert_eq!(p.errors, q.errors);
});
