//! Fuzz target: `Tokenizer::parse` on any bytes, then `encode` of any text and
//! `decode` of the ids it gives (and of arbitrary id pairs): never a panic, and
//! the ids are in the vocabulary.
//! Input layout: vocabulary size (u16 LE), tokenizer length (u16 LE), the
//! tokenizer file, then the text. Seeds: `fuzz/seeds/tokenizer`.
#![no_main]
use bareflow_llm::Tokenizer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let vocab = u16::from_le_bytes([data[0], data[1]]) as usize;
    let tok_len = (u16::from_le_bytes([data[2], data[3]]) as usize).min(data.len() - 4);
    let (tok, text) = data[4..].split_at(tok_len);
    if let Ok(t) = Tokenizer::parse(tok, vocab) {
        if let Ok(ids) = t.encode_bytes(text, true, true) {
            let mut prev = 1;
            for &id in &ids {
                assert!((id as usize) < vocab, "encode gave id {id} outside a vocabulary of {vocab}");
                let _ = t.decode_printable(prev, id);
                prev = id;
            }
        }
        // Arbitrary (prev, token) pairs from the text, in and out of range.
        for w in text.chunks_exact(4).take(64) {
            let prev = u16::from_le_bytes([w[0], w[1]]) as u32;
            let id = u16::from_le_bytes([w[2], w[3]]) as u32;
            let _ = t.decode(prev, id);
            let _ = t.decode_printable(prev, id);
        }
    }
});
