//! Decoding arbitrary id sequences, in range or not, with each tokenizer: whole-sequence and
//! streaming decoders agree, and the decoded text encodes again without trouble.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern::tokenizer::StreamDecoder;
use tern_fuzz::tokenizers;

fuzz_target!(|data: &[u8]| {
    let Some((tokenizer, rest)) = tokenizers::pick(data) else {
        return;
    };
    let n_vocab = tokenizer.n_vocab() as u32;
    // Mostly valid ids, some just past the vocabulary, and the largest id there is.
    let ids: Vec<u32> = rest
        .chunks_exact(2)
        .map(|c| match u16::from_le_bytes([c[0], c[1]]) {
            u16::MAX => u32::MAX,
            v => u32::from(v) % (n_vocab + 16),
        })
        .collect();
    let text = tokenizer.decode(&ids);

    let mut stream = StreamDecoder::new(tokenizer);
    let mut streamed: String = ids.iter().map(|&id| stream.push(id)).collect();
    streamed.push_str(&stream.finish());
    assert_eq!(streamed, text, "ids {ids:?}");

    // Continuing a prompt of the first half: each piece as the tokenizer gives it, less the
    // space of a piece right after BOS.
    let (prompt, generated) = ids.split_at(ids.len() / 2);
    let mut stream = StreamDecoder::after(tokenizer, prompt);
    let mut tail: String = generated.iter().map(|&id| stream.push(id)).collect();
    tail.push_str(&stream.finish());
    let mut prev = prompt.last().copied();
    let mut bytes = Vec::new();
    for &id in generated {
        let mut one = Vec::new();
        tokenizer.append_token_bytes(id, &mut one);
        if prev.is_some() && prev == tokenizer.bos() && tokenizer.add_space_prefix() {
            one = one.strip_prefix(b" ").map(<[u8]>::to_vec).unwrap_or(one);
        }
        bytes.extend(one);
        prev = Some(id);
    }
    assert_eq!(
        tail,
        String::from_utf8_lossy(&bytes),
        "generated {generated:?}"
    );

    for special in [false, true] {
        let again = tokenizer.encode(&text, special, special);
        assert!(again.iter().all(|&id| id < n_vocab));
    }
});
