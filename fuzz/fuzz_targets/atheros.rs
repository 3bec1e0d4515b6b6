//! Fuzz the atheros reader: arbitrary bytes, whole-file and through the push decoder split at a
//! fuzzer-chosen point, must never panic, and both paths must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfloc_csi::decode::{read_all, PushDecoder};
use rfloc_csi::{AnyParser, Format, ReadOptions};

fuzz_target!(|data: &[u8]| {
    let opts = ReadOptions::default();
    let whole = read_all(&mut AnyParser::new(Format::Atheros, opts.clone()), data);
    let split = data.first().map(|&b| b as usize * 7).unwrap_or(0).min(data.len());
    let mut d = PushDecoder::new(AnyParser::new(Format::Atheros, opts));
    d.push(&data[..split]);
    d.push(&data[split..]);
    d.finish();
    let (mut frames, mut errors) = (Vec::new(), Vec::new());
    for e in d.drain() {
        match e {
            Ok(f) => frames.push(f),
            Err(e) => errors.push(e),
        }
    }
    assert_eq!(frames.len(), whole.0.len());
});
