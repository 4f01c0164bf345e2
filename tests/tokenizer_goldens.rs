//! The CLIP tokenizer against open_clip's `SimpleTokenizer`: every golden case
//! in `tests/fixtures/goldens/tokenizer.json` (made by
//! `tests/fixtures/make_fixtures.py`) must give exactly the same 77 ids, and
//! so must the edge cases below (ids taken from open_clip 3.3.0 with ftfy
//! 6.3.1).
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

use sow_studio::tokenizer::{ClipTokenizer, TokenizerError, CONTEXT_LENGTH, PAD_ID};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

fn tokenizer() -> ClipTokenizer {
    ClipTokenizer::from_dir(fixtures().join("tiny-sd2").join("tokenizer"))
        .expect("load fixture tokenizer")
}

/// Describes the first difference between two id rows, for failure messages.
fn diff(text: &str, want: &[u32], got: &[u32]) -> Option<String> {
    if want == got {
        return None;
    }
    let at = want
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(want.len().min(got.len()));
    Some(format!("text {text:?}\n  first difference at index {at}\n  open_clip: {want:?}\n  ours:      {got:?}"))
}

#[test]
fn fixture_vocabulary_loads() {
    let tok = tokenizer();
    assert_eq!(tok.vocab_size(), 49408);
    assert_eq!(tok.start_id(), 49406);
    assert_eq!(tok.end_id(), 49407);
    assert_eq!(tok.token_id("!"), Some(PAD_ID));
    // The model folder works too.
    let from_root =
        ClipTokenizer::from_dir(fixtures().join("tiny-sd2")).expect("load from model folder");
    assert_eq!(from_root.tokenize("a cat"), tok.tokenize("a cat"));
    // A missing folder is an error, not a panic.
    let err = ClipTokenizer::from_dir(fixtures().join("no-such-dir")).unwrap_err();
    assert!(matches!(err, TokenizerError::Io { .. }), "{err}");
}

/// Cases beyond the fixture's, aimed at the cleanup and the pre-tokenizer:
/// `(text, ids between the start and end tokens)`.
const EDGE_CASES: &[(&str, &[u32])] = &[
    // ftfy's strict entity pass runs to a fixed point, then html.unescape twice.
    (
        "don&rsquo;t &ldquo;quoted&rdquo; &hellip; &mdash; &euro;5",
        &[847, 713, 257, 27706, 257, 959, 2005, 6309, 276],
    ),
    (
        "&amp;amp;amp;amp;amp; &amp;lt;b&amp;gt;",
        &[261, 283, 321, 285],
    ),
    // A line with `<` switches ftfy's entity pass off (for later lines too).
    (
        "<b>&amp;amp;amp;</b> &rsquo;",
        &[283, 321, 29, 261, 6259, 26, 34308, 321, 285, 728, 503],
    ),
    (
        "one &amp;amp;amp;\ntwo <x> &amp;amp;amp;\nthree &amp;amp;amp;",
        &[
            637, 261, 1237, 283, 343, 285, 261, 6259, 282, 2097, 261, 6259, 282,
        ],
    ),
    // Legacy names without `;`, all-caps aliases, numeric references.
    (
        "fish &amp chips &lt3 AT&T &copy2024 &notit; &notin; &ampx",
        &[
            2759, 261, 8855, 283, 274, 536, 261, 339, 5811, 273, 271, 273, 275, 126, 361, 585, 282,
            17788, 487, 261, 343,
        ],
    ),
    (
        "P&EACUTE;REZ BUNDESSTRA&SZLIG;E &ALPHA; &NOTIN; &nTILDE;",
        &[
            43167, 15192, 2591, 6797, 1894, 8938, 138, 365, 17788, 487, 261, 77, 6124, 654, 282,
        ],
    ),
    (
        "&#65;&#x42;&#X43 &#0; &#1;x &#128; &#59; &#x1F600; &#65a; &#x110000;",
        &[5334, 39802, 343, 6309, 282, 7334, 3894, 282, 39802],
    ),
    // Ligatures, full/half width, curly quotes, ANSI escapes, control characters.
    (
        "ﬂuﬃeﬆ ﬁne ĳ ŉ ǆ",
        &[3698, 19961, 1509, 3797, 72, 329, 262, 333, 67, 129, 378],
    ),
    (
        "ＬＯＵＤ\u{3000}ＮＯＩＳＥＳ Ｕﾀｰﾝ ｶﾞｷﾞ",
        &[7464, 31575, 84, 34941, 18584, 367, 3909, 105, 3909, 362],
    ),
    ("“here’s” ‚‛ „‟ ʼ", &[257, 763, 568, 257, 8445, 8575, 262]),
    (
        "\u{1b}[36;44mI'm blue\u{1b}[0m \u{feff}bom\u{7f} tab\tx\u{1c}y",
        &[328, 880, 1746, 19469, 14724, 11443],
    ),
    (
        "\u{93}smart\u{94} quotes in C1 \u{85}",
        &[257, 4115, 257, 5808, 530, 322, 272, 959],
    ),
    // Letters, marks, numbers and symbols as Python's \p{L} / \p{N} see them.
    (
        "नमस्ते ক্ষ",
        &[
            3124, 101, 48254, 28505, 19389, 27263, 25130, 11322, 499, 26339, 491, 11322, 371,
        ],
    ),
    (
        "Ⅻ ½ ① ٣ Ⓐⓑ 🅰",
        &[
            158, 227, 375, 33613, 158, 239, 510, 149, 352, 27400, 238, 27400, 495, 22010, 364,
        ],
    ),
    (
        "ΟΔΟΣ İSTANBUL ẞ K",
        &[
            138, 123, 138, 112, 138, 123, 139, 480, 328, 16384, 11231, 127, 509, 330,
        ],
    ),
    // Contractions, including IGNORECASE letting `'s` match the long s.
    (
        "IT'S O'NEIL ''s '''t !'s 'sam 'ſt",
        &[
            585, 568, 334, 262, 8030, 8445, 338, 6, 8445, 339, 13222, 338, 568, 687, 6, 129, 379,
            339,
        ],
    ),
    // open_clip's own special-token spellings are special; the HF ones are not.
    (
        "<end_of_text> <START_OF_TEXT> x<end_of_text>y <|startoftext|>",
        &[
            49407, 49406, 343, 49407, 344, 27, 347, 993, 6659, 4160, 91, 285,
        ],
    ),
    (
        "👨\u{200d}👩\u{200d}👧 🇺🇸 a\u{ad}b",
        &[25023, 26304, 964, 356, 5688, 320, 22618, 321],
    ),
];

#[test]
fn matches_open_clip_edge_cases() {
    let tok = tokenizer();
    let mut failures = Vec::new();
    for &(text, body) in EDGE_CASES {
        let mut want = vec![tok.start_id()];
        want.extend_from_slice(body);
        want.push(tok.end_id());
        want.resize(CONTEXT_LENGTH, PAD_ID);
        failures.extend(diff(text, &want, &tok.tokenize(text)));
        failures.extend(diff(text, body, &tok.encode(text)));
    }
    assert!(
        failures.is_empty(),
        "{} edge cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
