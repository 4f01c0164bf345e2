//! CLIP's byte-level BPE tokenizer, as used to train Stable Diffusion 2.x.
//!
//! The reference is open_clip's `SimpleTokenizer` (the OpenCLIP ViT-H/14 text
//! encoder of SD 2 was trained with it). The vocabulary comes from the
//! diffusers layout, `tokenizer/vocab.json` and `tokenizer/merges.txt`, whose
//! ids are the same as open_clip's.
//!
//! Pipeline for one prompt:
//! 1. [`clean_text`]: the deterministic parts of `ftfy.fix_text`,
//!    `html.unescape` twice, whitespace collapsing and lower-casing.
//! 2. Pre-tokenization with CLIP's pattern (letters runs, single digits,
//!    punctuation runs, `'s`-style contractions, literal special tokens).
//! 3. Each piece's UTF-8 bytes become byte symbols, `</w>` is attached to the
//!    last, and merges from `merges.txt` are applied lowest rank first.
//! 4. [`ClipTokenizer::tokenize`] frames the ids with start/end tokens and
//!    pads to [`CONTEXT_LENGTH`] with [`PAD_ID`].
//!
//! Everything here is pure computation on strings, so it runs the same in the
//! browser (the app fetches the two files itself) and natively.
//!
//! # Where it can differ from open_clip
//!
//! Checked against open_clip 3.3.0 (ftfy 6.3.1, `regex` 2026.11.19, CPython
//! 3.11) on the fixture goldens, hand-made edge cases and ~13k random strings;
//! the only differences seen come from:
//! - ftfy's mojibake repair (`fix_encoding`), a heuristic we leave out:
//!   "cafÃ©" is "café" to open_clip and "cafã©" here; likewise an entity
//!   that decodes next to a Latin-1 character can form mojibake ftfy then
//!   "repairs" (`&EACUTE;²` gives "ɲ" there, "é²" here).
//! - HTML named references outside the ~260 we know (HTML 4's set plus
//!   `&apos;` and HTML5's all-caps spellings of them): `&check;` is "✓" to
//!   Python and stays "&check;" here. Numeric references are complete.
//! - Unicode versions: Rust's tables are Unicode 17, CPython 3.11's
//!   lower-casing is Unicode 14 and `regex` ships a newer one, so characters
//!   assigned after Unicode 14 can lower-case or classify differently.
//! - A literal `<|endoftext|>` in a prompt is plain text, because open_clip
//!   itself spells its special tokens `<start_of_text>` / `<end_of_text>` and
//!   only those become special ids (Hugging Face's `CLIPTokenizer` differs
//!   here; we follow open_clip).

mod bpe;
mod cleanup;
mod entities;
mod pretokenize;

use std::collections::HashMap;
use std::fmt;

use bpe::{apply_merges, Merge, BYTE_CHARS, END_OF_WORD};
pub use cleanup::clean_text;
use pretokenize::{pieces, Piece, Special};

/// Sequence length of the SD 2 text encoder; [`ClipTokenizer::tokenize`]
/// always returns this many ids.
pub const CONTEXT_LENGTH: usize = 77;

/// Id used for padding after the end token. open_clip zero-fills, and id 0
/// is the token "!" (diffusers' SD 2 tokenizer pads with "!" for the same
/// reason).
pub const PAD_ID: u32 = 0;

/// Vocabulary string of the start-of-text token (id 49406 in CLIP).
pub const START_OF_TEXT: &str = "<|startoftext|>";

/// Vocabulary string of the end-of-text token (id 49407 in CLIP).
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// Most merges CLIP reads from merges.txt (49152 - 256 - 2); open_clip and
/// Hugging Face ignore any lines after these.
pub const MAX_MERGES: usize = 49152 - 256 - 2;

/// Why a tokenizer could not be built from its files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizerError {
    /// `vocab.json` is not a JSON object mapping strings to unsigned ids.
    #[error("vocab.json is not a JSON object of token -> id: {0}")]
    InvalidVocab(#[source] serde_json::Error),
    /// Two vocabulary entries share an id.
    #[error("vocab.json gives id {id} to both {first:?} and {second:?}")]
    DuplicateId {
        /// The shared id.
        id: u32,
        /// One token with that id.
        first: String,
        /// Another token with that id.
        second: String,
    },
    /// A special token is missing from `vocab.json`.
    #[error("vocab.json has no special token {0:?}")]
    MissingSpecialToken(&'static str),
    /// One of the 512 byte-level symbols is missing from `vocab.json`.
    #[error("vocab.json has no byte-level symbol {0:?}; is this a CLIP vocabulary?")]
    MissingByteSymbol(String),
    /// A line of `merges.txt` is not two symbols separated by whitespace.
    #[error("merges.txt line {line}: expected two symbols separated by a space, found {text:?}")]
    MalformedMerge {
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
    /// A merge produces a symbol that `vocab.json` does not have, which
    /// usually means the two files belong to different tokenizers.
    #[error("merges.txt line {line}: merged symbol {symbol:?} is not in vocab.json")]
    UnknownMergeResult {
        /// 1-based line number.
        line: usize,
        /// The concatenated symbol.
        symbol: String,
    },
    /// A tokenizer file could not be read (native only).
    #[cfg(not(target_arch = "wasm32"))]
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file that failed.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// CLIP BPE tokenizer for Stable Diffusion 2.x prompts.
///
/// Build it once from the vocabulary files, then call
/// [`tokenize`](Self::tokenize) per prompt. It is immutable, `Send` and
/// `Sync`.
#[derive(Clone)]
pub struct ClipTokenizer {
    vocab: HashMap<String, u32>,
    merges: HashMap<(u32, u32), Merge>,
    /// Id of each byte's symbol in the middle of a piece.
    byte_ids: [u32; 256],
    /// Id of each byte's symbol with `</w>`, for the last byte of a piece.
    byte_end_ids: [u32; 256],
    start_id: u32,
    end_id: u32,
}

impl fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The tables have ~100k entries; show their sizes only.
        f.debug_struct("ClipTokenizer")
            .field("vocab_size", &self.vocab.len())
            .field("merges", &self.merges.len())
            .field("start_id", &self.start_id)
            .field("end_id", &self.end_id)
            .finish()
    }
}

impl ClipTokenizer {
    /// Builds the tokenizer from the contents of `vocab.json` (token string
    /// to id) and `merges.txt` (optional `#version` header, then one
    /// `left right` pair per line, earliest line merges first).
    ///
    /// Checks that the vocabulary has both special tokens, all 512 byte
    /// symbols and every merge result, so encoding can never meet an unknown
    /// symbol.
    pub fn from_files(vocab_json: &str, merges_txt: &str) -> Result<Self, TokenizerError> {
        let vocab: HashMap<String, u32> =
            serde_json::from_str(vocab_json).map_err(TokenizerError::InvalidVocab)?;

        // BPE runs on ids, which is only sound if ids are unique.
        let mut by_id: HashMap<u32, &str> = HashMap::with_capacity(vocab.len());
        for (token, &id) in &vocab {
            if let Some(other) = by_id.insert(id, token) {
                let (first, second) = if other < token.as_str() {
                    (other, token.as_str())
                } else {
                    (token.as_str(), other)
                };
                return Err(TokenizerError::DuplicateId {
                    id,
                    first: first.to_owned(),
                    second: second.to_owned(),
                });
            }
        }

        let special = |name: &'static str| {
            vocab
                .get(name)
                .copied()
                .ok_or(TokenizerError::MissingSpecialToken(name))
        };
        let start_id = special(START_OF_TEXT)?;
        let end_id = special(END_OF_TEXT)?;

        let mut byte_ids = [0; 256];
        let mut byte_end_ids = [0; 256];
        for (b, &c) in BYTE_CHARS.iter().enumerate() {
            let symbol = c.to_string();
            let with_end = format!("{c}{END_OF_WORD}");
            byte_ids[b] = *vocab
                .get(&symbol)
                .ok_or(TokenizerError::MissingByteSymbol(symbol))?;
            byte_end_ids[b] = *vocab
                .get(&with_end)
                .ok_or(TokenizerError::MissingByteSymbol(with_end))?;
        }

        let merges = parse_merges(merges_txt, &vocab)?;
        Ok(Self {
            vocab,
            merges,
            byte_ids,
            byte_end_ids,
            start_id,
            end_id,
        })
    }

    /// Reads `vocab.json` and `merges.txt` from `dir`, which may be the
    /// tokenizer folder itself or a diffusers model folder holding
    /// `tokenizer/`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(dir: impl AsRef<std::path::Path>) -> Result<Self, TokenizerError> {
        let mut dir = dir.as_ref().to_path_buf();
        if !dir.join("vocab.json").exists() && dir.join("tokenizer").join("vocab.json").exists() {
            dir.push("tokenizer");
        }
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| TokenizerError::Io { path, source })
        };
        Self::from_files(&read("vocab.json")?, &read("merges.txt")?)
    }

    /// Number of vocabulary entries (49408 for CLIP).
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// Id of the start-of-text token.
    pub fn start_id(&self) -> u32 {
        self.start_id
    }

    /// Id of the end-of-text token.
    pub fn end_id(&self) -> u32 {
        self.end_id
    }

    /// Id of a vocabulary string (in its byte-symbol spelling, e.g.
    /// `"cat</w>"`), if present.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.vocab.get(token).copied()
    }

    /// Encodes a prompt into ids without start/end tokens or padding.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        self.encode_into(text, usize::MAX, &mut ids);
        ids
    }

    /// Encodes a prompt the way the SD 2 text encoder expects: start token,
    /// the prompt's ids, end token, then [`PAD_ID`] up to [`CONTEXT_LENGTH`].
    /// A long prompt keeps its first 75 ids and still ends with the end
    /// token.
    pub fn tokenize(&self, text: &str) -> [u32; CONTEXT_LENGTH] {
        let mut body = Vec::with_capacity(CONTEXT_LENGTH);
        // Pieces are independent, so stopping early gives the same prefix.
        self.encode_into(text, CONTEXT_LENGTH - 2, &mut body);
        let mut out = [PAD_ID; CONTEXT_LENGTH];
        out[0] = self.start_id;
        out[1..=body.len()].copy_from_slice(&body);
        out[body.len() + 1] = self.end_id;
        out
    }

    /// [`tokenize`](Self::tokenize) for several prompts, one row each
    /// (flatten with `.concat()` for a `[batch * 77]` tensor buffer).
    pub fn tokenize_batch<S: AsRef<str>>(&self, texts: &[S]) -> Vec<[u32; CONTEXT_LENGTH]> {
        texts.iter().map(|t| self.tokenize(t.as_ref())).collect()
    }

    /// Appends the ids of `text` to `out`, stopping once `out` holds `limit`.
    fn encode_into(&self, text: &str, limit: usize, out: &mut Vec<u32>) {
        let cleaned = clean_text(text);
        let mut word = Vec::new();
        for piece in pieces(&cleaned) {
            if out.len() >= limit {
                break;
            }
            match piece {
                Piece::Special(Special::StartOfText) => out.push(self.start_id),
                Piece::Special(Special::EndOfText) => out.push(self.end_id),
                Piece::Text(text) => {
                    let bytes = text.as_bytes();
                    let Some((&last, init)) = bytes.split_last() else {
                        continue;
                    };
                    word.clear();
                    word.extend(init.iter().map(|&b| self.byte_ids[usize::from(b)]));
                    word.push(self.byte_end_ids[usize::from(last)]);
                    apply_merges(&mut word, &self.merges);
                    out.extend_from_slice(&word);
                }
            }
        }
        out.truncate(limit);
    }
}

/// Parses merges.txt into `(left id, right id) -> (rank, merged id)`.
fn parse_merges(
    text: &str,
    vocab: &HashMap<String, u32>,
) -> Result<HashMap<(u32, u32), Merge>, TokenizerError> {
    let mut lines = text.lines().enumerate().peekable();
    if lines.peek().is_some_and(|(_, l)| l.starts_with("#version")) {
        lines.next();
    }
    let mut merges = HashMap::with_capacity(MAX_MERGES);
    for (rank, (index, line)) in lines.take(MAX_MERGES).enumerate() {
        let mut parts = line.split_whitespace();
        let (left, right) = match (parts.next(), parts.next(), parts.next()) {
            (None, ..) => continue,
            (Some(l), Some(r), None) => (l, r),
            _ => {
                return Err(TokenizerError::MalformedMerge {
                    line: index + 1,
                    text: line.to_owned(),
                })
            }
        };
        // A merge whose parts are not symbols can never fire (as in Python).
        let (Some(&l), Some(&r)) = (vocab.get(left), vocab.get(right)) else {
            continue;
        };
        let symbol = format!("{left}{right}");
        let merged = *vocab
            .get(&symbol)
            .ok_or(TokenizerError::UnknownMergeResult {
                line: index + 1,
                symbol,
            })?;
        // `rank` counts lines, so blank lines leave gaps but never reorder;
        // a repeated pair takes its later rank, like Python's dict.
        let rank = u32::try_from(rank).unwrap_or(u32::MAX);
        merges.insert((l, r), Merge { rank, merged });
    }
    Ok(merges)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CLIP-shaped vocabulary: the 512 byte symbols, then the merges'
    /// results, then the two special tokens (the same order CLIP uses).
    fn tiny(merges: &[(&str, &str)]) -> (String, String) {
        let mut tokens: Vec<String> = BYTE_CHARS.iter().map(|c| c.to_string()).collect();
        tokens.extend(BYTE_CHARS.iter().map(|c| format!("{c}</w>")));
        tokens.extend(merges.iter().map(|(l, r)| format!("{l}{r}")));
        tokens.push(START_OF_TEXT.into());
        tokens.push(END_OF_TEXT.into());
        let vocab: serde_json::Map<String, serde_json::Value> = tokens
            .into_iter()
            .enumerate()
            .map(|(i, t)| (t, i.into()))
            .collect();
        let mut txt = String::from("#version: 0.2\n");
        for (l, r) in merges {
            txt.push_str(&format!("{l} {r}\n"));
        }
        (serde_json::Value::Object(vocab).to_string(), txt)
    }

    fn tokenizer(merges: &[(&str, &str)]) -> ClipTokenizer {
        let (v, m) = tiny(merges);
        ClipTokenizer::from_files(&v, &m).unwrap()
    }

    fn id(t: &ClipTokenizer, s: &str) -> u32 {
        t.token_id(s).unwrap()
    }

    #[test]
    fn encodes_with_merges() {
        let t = tokenizer(&[("c", "a"), ("ca", "t</w>"), ("h", "i</w>")]);
        assert_eq!(t.vocab_size(), 512 + 3 + 2);
        assert_eq!(t.encode("Cat hi"), [id(&t, "cat</w>"), id(&t, "hi</w>")]);
        // No merge for "t a": byte symbols with `</w>` on the last.
        assert_eq!(t.encode("ta"), [id(&t, "t"), id(&t, "a</w>")]);
        // Non-ASCII goes through its UTF-8 bytes (é = C3 A9 -> "Ã" "©</w>").
        assert_eq!(t.encode("é"), [id(&t, "\u{c3}"), id(&t, "\u{a9}</w>")]);
        assert_eq!(t.encode("  "), Vec::<u32>::new());
    }

    #[test]
    fn tokenize_frames_pads_and_truncates() {
        let t = tokenizer(&[]);
        let (sot, eot) = (t.start_id(), t.end_id());
        let short = t.tokenize("a");
        assert_eq!(short[..3], [sot, id(&t, "a</w>"), eot]);
        assert!(short[3..].iter().all(|&x| x == PAD_ID));
        assert_eq!(t.tokenize("")[..3], [sot, eot, PAD_ID]);

        // 100 single-letter words: 75 survive, the end token is kept.
        let long = vec!["x"; 100].join(" ");
        let ids = t.tokenize(&long);
        assert_eq!(ids[0], sot);
        assert!(ids[1..76].iter().all(|&x| x == id(&t, "x</w>")));
        assert_eq!(ids[76], eot);
        // Exactly 75 fits without truncation; 76 truncates.
        for (n, last) in [(75, eot), (76, eot), (74, PAD_ID)] {
            let ids = t.tokenize(&vec!["x"; n].join(" "));
            assert_eq!(ids[76], last, "n = {n}");
        }
        let batch = t.tokenize_batch(&["a", ""]);
        assert_eq!(batch, vec![t.tokenize("a"), t.tokenize("")]);
    }

    #[test]
    fn literal_special_tokens() {
        let t = tokenizer(&[]);
        assert_eq!(t.encode("<END_OF_TEXT>"), [t.end_id()]);
        assert_eq!(
            t.encode("a<start_of_text>"),
            [id(&t, "a</w>"), t.start_id()]
        );
        // The Hugging Face spelling is plain text to open_clip: "<|" "endoftext" "|>".
        assert_eq!(t.encode("<|endoftext|>").len(), 2 + 9 + 2);
    }

    #[test]
    fn load_errors() {
        let (v, m) = tiny(&[("c", "a")]);
        assert!(matches!(
            ClipTokenizer::from_files("not json", &m),
            Err(TokenizerError::InvalidVocab(_))
        ));
        assert!(matches!(
            ClipTokenizer::from_files("[1,2]", &m),
            Err(TokenizerError::InvalidVocab(_))
        ));
        assert!(matches!(
            ClipTokenizer::from_files(r#"{"a": -1}"#, &m),
            Err(TokenizerError::InvalidVocab(_))
        ));
        let err = ClipTokenizer::from_files(&v, "#version: 0.2\nc a\nca\n").unwrap_err();
        assert!(
            matches!(err, TokenizerError::MalformedMerge { line: 3, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("line 3"));
        let err = ClipTokenizer::from_files(&v, "#version: 0.2\nc a\na c\n").unwrap_err();
        assert!(
            matches!(err, TokenizerError::UnknownMergeResult { line: 3, ref symbol } if symbol == "ac"),
            "{err}"
        );
        let no_eot = v.replace(END_OF_TEXT, "<|nope|>");
        assert!(matches!(
            ClipTokenizer::from_files(&no_eot, &m),
            Err(TokenizerError::MissingSpecialToken(END_OF_TEXT))
        ));
        let no_byte = v.replace("\"q</w>\"", "\"qq</w>\"");
        assert!(
            matches!(ClipTokenizer::from_files(&no_byte, &m), Err(TokenizerError::MissingByteSymbol(ref s)) if s == "q</w>")
        );
        let dup = r#"{"a": 1, "b": 1}"#;
        assert!(matches!(
            ClipTokenizer::from_files(dup, &m),
            Err(TokenizerError::DuplicateId { id: 1, .. })
        ));
        // Blank lines, CRLF and a missing header are fine.
        assert!(ClipTokenizer::from_files(&v, "c a\r\n\r\n").is_ok());
        assert!(ClipTokenizer::from_files(&v, "").is_ok());
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<ClipTokenizer>();
        check::<TokenizerError>();
    }

    #[test]
    fn later_duplicate_merge_wins() {
        // "a b" is listed before and after "b c": its later rank loses to "b c".
        let (v, _) = tiny(&[("a", "b"), ("b", "c</w>")]);
        let m = "#version: 0.2\na b\nb c</w>\na b\n";
        let t = ClipTokenizer::from_files(&v, m).unwrap();
        assert_eq!(t.encode("abc"), [id(&t, "a"), id(&t, "bc</w>")]);
    }
}
