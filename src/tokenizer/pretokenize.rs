//! CLIP's pre-tokenizer, written out by hand instead of with a regex engine
//! (keeps the wasm bundle small). open_clip's pattern, tried in this order at
//! each position, leftmost match first:
//!
//! ```text
//! <start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//! ```
//!
//! Whitespace between pieces is dropped. The text is already lower-cased, so
//! the pattern's IGNORECASE flag only matters in one spot: `'s` also matches
//! `'ſ` (long s), as Python's `regex` does.
//!
//! Character classes use the standard library's Unicode tables:
//! - `\p{N}` is [`char::is_numeric`] (Nd, Nl, No): the same set.
//! - `\s` is [`char::is_whitespace`] (White_Space): the same set.
//! - `\p{L}` (Lu, Ll, Lt, Lm, Lo) is [`char::is_alphabetic`] minus what the
//!   Alphabetic property adds on top of letters: numeric letters (Nl, e.g.
//!   "Ⅻ"), combining marks (Mn/Mc, e.g. Devanagari vowel signs, which CLIP
//!   puts in punctuation runs) and the enclosed Latin letter symbols (So, e.g.
//!   "Ⓐ", "🅰"). That reproduces Python `regex`'s class exactly, except for
//!   characters whose category changed between the two Unicode versions.

use unicode_normalization::char::is_combining_mark;

/// open_clip's own names for its special tokens; a prompt that contains one
/// of these literally gets the special id (as in open_clip). The Hugging Face
/// spellings `<|startoftext|>` / `<|endoftext|>` are ordinary text there.
pub(super) const SPECIAL_LITERALS: [(&str, Special); 2] = [
    ("<start_of_text>", Special::StartOfText),
    ("<end_of_text>", Special::EndOfText),
];

/// CLIP's contraction suffixes (after the apostrophe), in the pattern's order.
const CONTRACTIONS: [&str; 7] = ["s", "t", "re", "ve", "m", "ll", "d"];

/// Which special token a literal piece names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Special {
    StartOfText,
    EndOfText,
}

/// One pre-token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Piece<'a> {
    /// A special token written out in the text.
    Special(Special),
    /// Text to run through byte-level BPE.
    Text(&'a str),
}

/// Regex `\p{L}`.
pub(super) fn is_letter(c: char) -> bool {
    c.is_alphabetic() && !c.is_numeric() && !is_combining_mark(c) && !is_enclosed_letter(c)
}

/// Regex `\p{N}`.
pub(super) fn is_number(c: char) -> bool {
    c.is_numeric()
}

/// Regex `\s`.
pub(super) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Symbols (category So) that Unicode nonetheless marks Alphabetic: circled,
/// parenthesized-free squared and negative enclosed Latin capitals/smalls.
fn is_enclosed_letter(c: char) -> bool {
    matches!(c, '\u{24b6}'..='\u{24e9}' | '\u{1f130}'..='\u{1f149}' | '\u{1f150}'..='\u{1f169}' | '\u{1f170}'..='\u{1f189}')
}

/// Iterates over the pieces of (cleaned) text.
pub(super) fn pieces(text: &str) -> Pieces<'_> {
    Pieces { rest: text }
}

/// Iterator returned by [`pieces`].
pub(super) struct Pieces<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = Piece<'a>;

    fn next(&mut self) -> Option<Piece<'a>> {
        let start = self.rest.find(|c: char| !is_space(c))?;
        let text = &self.rest[start..];
        let (piece, len) = scan(text);
        self.rest = &text[len..];
        Some(piece)
    }
}

/// Matches the pattern at the start of `text` (which does not start with
/// whitespace); returns the piece and its length in bytes. Every
/// non-whitespace character starts some alternative, so this never fails.
fn scan(text: &str) -> (Piece<'_>, usize) {
    for (literal, special) in SPECIAL_LITERALS {
        if text.starts_with(literal) {
            return (Piece::Special(special), literal.len());
        }
    }
    if let Some(after) = text.strip_prefix('\'') {
        // IGNORECASE lets `'s` match the long s "ſ" too (its case fold is
        // "s"); lower-casing leaves "ſ" alone, and no other character folds
        // to one of these letters. (The special literals do not get this.)
        let suffix = CONTRACTIONS
            .iter()
            .find(|c| after.starts_with(**c))
            .map(|c| c.len())
            .or_else(|| after.starts_with('ſ').then_some('ſ'.len_utf8()));
        if let Some(n) = suffix {
            return (Piece::Text(&text[..1 + n]), 1 + n);
        }
    }
    let mut chars = text.chars();
    let first = chars.next().unwrap_or(' ');
    let len = if is_letter(first) {
        run_len(text, is_letter)
    } else if is_number(first) {
        first.len_utf8()
    } else {
        run_len(text, |c| !is_space(c) && !is_letter(c) && !is_number(c))
    };
    (Piece::Text(&text[..len]), len)
}

/// Byte length of the longest prefix of `text` whose characters satisfy `f`.
fn run_len(text: &str, f: impl Fn(char) -> bool) -> usize {
    text.find(|c: char| !f(c)).unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        pieces(s)
            .map(|p| match p {
                Piece::Text(t) => t.to_owned(),
                Piece::Special(Special::StartOfText) => "<SOT>".to_owned(),
                Piece::Special(Special::EndOfText) => "<EOT>".to_owned(),
            })
            .collect()
    }

    #[test]
    fn splits_like_clip() {
        assert_eq!(
            texts("a photo of 2 cats!!"),
            ["a", "photo", "of", "2", "cats", "!!"]
        );
        assert_eq!(texts("1234"), ["1", "2", "3", "4"]);
        assert_eq!(
            texts("it's 'sam o'neil"),
            ["it", "'s", "'s", "am", "o", "'", "neil"]
        );
        assert_eq!(
            texts("we'll they're i'd ''s"),
            ["we", "'ll", "they", "'re", "i", "'d", "''", "s"]
        );
        assert_eq!(texts("!'s"), ["!'", "s"]);
        assert_eq!(
            texts("'ſt <ſtart_of_text>"),
            ["'ſ", "t", "<", "ſtart", "_", "of", "_", "text", ">"]
        );
        assert_eq!(texts("  a   b "), ["a", "b"]);
        assert_eq!(texts(""), Vec::<String>::new());
    }

    #[test]
    fn specials() {
        assert_eq!(
            texts("<end_of_text>x<start_of_text>"),
            ["<EOT>", "x", "<SOT>"]
        );
        // A punctuation run swallows the `<` before a special can start.
        assert_eq!(
            texts("<<end_of_text>"),
            ["<<", "end", "_", "of", "_", "text", ">"]
        );
        assert_eq!(texts("<|endoftext|>"), ["<|", "endoftext", "|>"]);
    }

    #[test]
    fn unicode_classes() {
        assert!(is_letter('é') && is_letter('ß') && is_letter('中') && is_letter('ʰ'));
        assert!(!is_letter('Ⅻ') && is_number('Ⅻ') && is_number('²') && is_number('½'));
        assert!(!is_letter('\u{94d}') && !is_letter('\u{93e}') && !is_letter('Ⓐ'));
        assert_eq!(texts("नमस्ते"), ["नमस", "\u{94d}", "त", "\u{947}"]);
        assert_eq!(texts("x²½"), ["x", "²", "½"]);
        assert_eq!(texts("🎉🎉 ok"), ["🎉🎉", "ok"]);
    }
}
