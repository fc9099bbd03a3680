//! Whole-tokenizer tests on small hand-made vocabularies. Model-file tests live in
//! `host/tests/tokenizer.rs`.

use proptest::prelude::*;

use super::*;

/// SentencePiece: specials, a few pieces, and byte fallback for every byte.
fn spm() -> Tokenizer {
    let mut tokens: Vec<(String, f32, i32)> = vec![
        ("<unk>".into(), 0.0, 2),
        ("<s>".into(), 0.0, 3),
        ("</s>".into(), 0.0, 3),
        ("<|user|>".into(), 0.0, 4),
    ];
    tokens.extend((0..=255u8).map(|b| (format!("<0x{b:02X}>"), 0.0, 6)));
    for (i, p) in ["▁", "h", "i", "▁h", "▁hi", "hi", "é"].iter().enumerate() {
        tokens.push((p.to_string(), -(i as f32), 1));
    }
    let spec = TokenizerSpec {
        model: "llama".into(),
        tokens: tokens.iter().map(|t| t.0.clone()).collect(),
        scores: Some(tokens.iter().map(|t| t.1).collect()),
        token_types: Some(tokens.iter().map(|t| t.2).collect()),
        ..TokenizerSpec::default()
    };
    Tokenizer::from_spec(&spec).unwrap()
}

/// Byte-level BPE with the 256 byte characters, a few merges and chat markers.
fn bpe() -> Tokenizer {
    let mut tokens: Vec<String> = (0..=255u8)
        .map(|b| bytes::byte_to_char(b).to_string())
        .collect();
    let merges = ["Ġ h", "h i", "Ġh i", "Ċ Ċ"];
    tokens.extend(["Ġh", "hi", "Ġhi", "ĊĊ"].map(String::from));
    let mut types = vec![1; tokens.len()];
    for special in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] {
        tokens.push(special.into());
        types.push(3);
    }
    let spec = TokenizerSpec {
        model: "gpt2".into(),
        pre: Some("qwen2".into()),
        tokens,
        token_types: Some(types),
        merges: Some(merges.map(String::from).to_vec()),
        eos: Some(262),
        bos: Some(260),
        ..TokenizerSpec::default()
    };
    Tokenizer::from_spec(&spec).unwrap()
}

fn id(t: &Tokenizer, text: &str) -> u32 {
    t.token_id(text).unwrap()
}

#[test]
fn spm_adds_bos_and_dummy_prefix() {
    let t = spm();
    assert!(t.add_bos());
    assert_eq!(t.encode("hi", true, false), [1, id(&t, "▁hi")]);
    assert_eq!(t.encode("hi", false, false), [id(&t, "▁hi")]);
    assert_eq!(t.encode("", true, false), [1]);
    assert!(t.encode("", false, false).is_empty());
}

#[test]
fn spm_prefixes_text_after_special_tokens_only() {
    let t = spm();
    let user = id(&t, "<|user|>");
    // The user-defined token is matched even without parse_special; the text after it gets
    // its own dummy prefix.
    assert_eq!(
        t.encode("hi<|user|>hi", false, false),
        [id(&t, "▁hi"), user, id(&t, "▁hi")]
    );
    // Control text is plain text unless parsed.
    let plain = t.encode("</s>", false, false);
    assert!(!plain.contains(&2));
    assert_eq!(t.encode("</s>", false, true), [2]);
}

#[test]
fn spm_byte_fallback_and_decode() {
    let t = spm();
    let ids = t.encode("hi 😀é", true, false);
    let emoji: Vec<u32> = "😀"
        .bytes()
        .map(|b| id(&t, &format!("<0x{b:02X}>")))
        .collect();
    let mut expected = vec![1, id(&t, "▁hi"), id(&t, "▁")];
    expected.extend(emoji);
    expected.push(id(&t, "é"));
    assert_eq!(ids, expected);
    assert_eq!(t.decode(&ids), "hi 😀é");
    // Without BOS the dummy space stays.
    assert_eq!(t.decode(&ids[1..]), " hi 😀é");
}

#[test]
fn control_tokens_decode_to_nothing() {
    let t = spm();
    assert_eq!(t.decode(&[1, id(&t, "▁hi"), 2]), "hi");
    assert!(t.token_bytes(2).is_empty());
    assert_eq!(&*t.token_bytes(id(&t, "<|user|>")), b"<|user|>");
    assert_eq!(&*t.token_bytes(id(&t, "<0x0A>")), b"\n");
    assert!(t.token_bytes(99_999).is_empty());
}

#[test]
fn bpe_policy_and_specials() {
    let t = bpe();
    assert_eq!(t.pre_tokenizer(), Some("qwen2"));
    assert!(!t.add_bos());
    assert!(t.is_end_of_generation(id(&t, "<|im_end|>")));
    // "<|endoftext|>" is an end marker by its text even though EOS is <|im_end|>.
    assert!(t.is_end_of_generation(id(&t, "<|endoftext|>")));
    assert!(!t.is_end_of_generation(id(&t, "<|im_start|>")));
    let im_start = id(&t, "<|im_start|>");
    let ids = t.encode("<|im_start|>hi hi\n\n", true, true);
    assert_eq!(ids, [im_start, id(&t, "hi"), id(&t, "Ġhi"), id(&t, "ĊĊ")]);
    assert_eq!(t.decode(&ids), "hi hi\n\n");
    // Unparsed, the marker is spelled with byte tokens.
    let plain = t.encode("<|im_start|>", false, false);
    assert_eq!(t.decode(&plain), "<|im_start|>");
    assert!(!plain.contains(&im_start));
}

#[test]
fn bpe_round_trips_any_text() {
    let t = bpe();
    for text in [
        "",
        " ",
        "héllo wörld 😀\t\r\n  x",
        "12345 don't",
        "\u{0}\u{7f}",
    ] {
        assert_eq!(t.decode(&t.encode(text, false, false)), text);
    }
}

#[test]
fn stream_holds_back_split_utf8() {
    let t = spm();
    let ids = t.encode("é😀", false, false);
    let mut s = StreamDecoder::new(&t);
    let outputs: Vec<String> = ids.iter().map(|&i| s.push(i)).collect();
    // "▁" then 'é' as one token, then the emoji's four byte tokens.
    assert_eq!(outputs, [" ", "é", "", "", "", "😀"]);
    assert_eq!(s.finish(), "");
}

#[test]
fn stream_after_prompt_drops_space_after_bos() {
    let t = spm();
    let hi = id(&t, "▁hi");
    assert_eq!(StreamDecoder::after(&t, &[1]).push(hi), "hi");
    assert_eq!(StreamDecoder::after(&t, &[1, hi]).push(hi), " hi");
    assert_eq!(StreamDecoder::new(&t).push(hi), " hi");
}

#[test]
fn stream_finish_flushes_incomplete_bytes() {
    let t = spm();
    let mut s = StreamDecoder::new(&t);
    assert_eq!(s.push(id(&t, "<0xE2>")), "");
    assert_eq!(s.finish(), "\u{FFFD}");
}

#[test]
fn bpe_requires_merges_and_known_pre() {
    let mut spec = TokenizerSpec {
        model: "gpt2".into(),
        tokens: vec!["a".into()],
        ..TokenizerSpec::default()
    };
    assert_eq!(
        Tokenizer::from_spec(&spec).unwrap_err(),
        TokenizerError::MissingKey("tokenizer.ggml.merges")
    );
    spec.merges = Some(vec![]);
    spec.pre = Some("mystery".into());
    assert_eq!(
        Tokenizer::from_spec(&spec).unwrap_err(),
        TokenizerError::UnknownPreTokenizer("mystery".into())
    );
    spec.pre = None;
    assert_eq!(
        Tokenizer::from_spec(&spec).unwrap().pre_tokenizer(),
        Some("default")
    );
}

proptest! {
    #[test]
    fn stream_equals_decode(ids in proptest::collection::vec(0u32..300, 0..40), bpe_vocab in any::<bool>()) {
        let t = if bpe_vocab { bpe() } else { spm() };
        let mut s = StreamDecoder::new(&t);
        let mut streamed: String = ids.iter().map(|&i| s.push(i)).collect();
        streamed.push_str(&s.finish());
        prop_assert_eq!(streamed, t.decode(&ids));
    }

    #[test]
    fn bpe_round_trip(text in "\\PC{0,40}") {
        let t = bpe();
        prop_assert_eq!(t.decode(&t.encode(&text, false, false)), text);
    }

    #[test]
    fn spm_round_trip_after_bos(text in "\\PC{0,40}") {
        let t = spm();
        // Control-looking text is not parsed, so everything comes back, except that a literal
        // '▁' reads as the space it stands for.
        prop_assert_eq!(t.decode(&t.encode(&text, true, false)), text.replace('▁', " "));
    }
}
