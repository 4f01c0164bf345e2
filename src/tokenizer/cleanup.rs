//! open_clip's `_clean_lower`: `ftfy.fix_text`, `html.unescape` twice, strip,
//! collapse whitespace, lower-case.
//!
//! Of ftfy we implement the deterministic fixers, in ftfy's order and repeated
//! until nothing changes, as ftfy does: strict HTML entity decoding (skipped
//! once a line containing `<` has been seen), C1 controls read as
//! Windows-1252, Latin ligatures, half/full-width forms, curly quotes, ANSI
//! escapes, stray control characters and NFC. Not implemented: ftfy's
//! heuristic mojibake repair (`fix_encoding`: "cafÃ©" stays "cafã©" where
//! ftfy gives "café") and its line-break fixer, which cannot change the
//! result because every line break is whitespace and is collapsed anyway.

use unicode_normalization::UnicodeNormalization;

use super::entities::{ftfy_unescape, html_unescape, windows_1252_c1};

/// Cleans a prompt as open_clip's `_clean_lower` does before tokenizing:
/// ftfy's deterministic fixes (entities, C1 controls as Windows-1252, Latin
/// ligatures, full/half-width forms, curly quotes, ANSI escapes, control
/// characters, NFC), `html.unescape` twice, whitespace runs collapsed to one
/// space and trimmed, then lower-cased.
///
/// ftfy's heuristic mojibake repair is not reproduced (see the
/// [module docs](super) for this and the other known differences).
///
/// ```
/// # use sow_studio::tokenizer::clean_text;
/// assert_eq!(clean_text("  Don&rsquo;t \u{201c}STOP\u{201d}\n ﬁne "), "don't \"stop\" fine");
/// ```
pub fn clean_text(text: &str) -> String {
    let fixed = fix_text(text);
    let unescaped = html_unescape(&html_unescape(&fixed));
    // `" ".join(s.split())` also strips both ends.
    let mut collapsed = String::with_capacity(unescaped.len());
    for word in unescaped.split(is_py_space).filter(|w| !w.is_empty()) {
        if !collapsed.is_empty() {
            collapsed.push(' ');
        }
        collapsed.push_str(word);
    }
    collapsed.to_lowercase()
}

/// Python's `str.isspace`, which `split()` and `strip()` use: Unicode
/// White_Space plus the four ASCII information separators U+001C..U+001F.
pub(super) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The subset of `ftfy.fix_text` described in the module docs.
fn fix_text(text: &str) -> String {
    // ftfy works line by line; once a line holds `<` it stops decoding
    // entities for that line and every later one (its config is reassigned).
    let mut unescape = true;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.contains('<') {
            unescape = false;
        }
        out.push_str(&fix_line(line, unescape));
    }
    out
}

/// One line through ftfy's fixers, repeated until it is stable.
fn fix_line(line: &str, unescape: bool) -> String {
    let mut text = line.to_owned();
    loop {
        let before = text.clone();
        if unescape {
            text = ftfy_unescape(&text);
        }
        text = map_chars(&text, |c, out| out.push(fix_c1(c)));
        text = map_chars(&text, |c, out| match ligature(c) {
            Some(s) => out.push_str(s),
            None => out.push(c),
        });
        text = map_chars(&text, push_standard_width);
        text = map_chars(&text, |c, out| out.push(uncurl(c)));
        text = remove_ansi_escapes(&text);
        text.retain(|c| !is_unwanted_control(c));
        text = text.nfc().collect();
        if text == before {
            return text;
        }
    }
}

/// Rebuilds `text` by feeding every character through `f`.
fn map_chars(text: &str, mut f: impl FnMut(char, &mut String)) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        f(c, &mut out);
    }
    out
}

/// ftfy's `fix_c1_controls`: a C1 control still in the text is almost always
/// a Windows-1252 byte that was decoded as Latin-1.
fn fix_c1(c: char) -> char {
    match u8::try_from(c) {
        Ok(b @ 0x80..=0x9f) => windows_1252_c1(b),
        _ => c,
    }
}

/// ftfy's `fix_latin_ligatures` table: typographic ligatures and legacy
/// digraphs, but not letters such as æ that are used on purpose.
fn ligature(c: char) -> Option<&'static str> {
    Some(match c {
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'ŉ' => "\u{2bc}n",
        'Ǳ' => "DZ",
        'ǲ' => "Dz",
        'ǳ' => "dz",
        'Ǆ' => "D\u{17d}",
        'ǅ' => "D\u{17e}",
        'ǆ' => "d\u{17e}",
        'Ǉ' => "LJ",
        'ǈ' => "Lj",
        'ǉ' => "lj",
        'Ǌ' => "NJ",
        'ǋ' => "Nj",
        'ǌ' => "nj",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' => "\u{17f}t",
        'ﬆ' => "st",
        _ => return None,
    })
}

/// ftfy's `fix_character_width`: the ideographic space becomes a plain space
/// and each form in U+FF01..U+FFEF becomes its NFKC equivalent.
fn push_standard_width(c: char, out: &mut String) {
    match c {
        '\u{3000}' => out.push(' '),
        '\u{ff01}'..='\u{ffef}' => out.extend(std::iter::once(c).nfkc()),
        _ => out.push(c),
    }
}

/// ftfy's `uncurl_quotes`.
fn uncurl(c: char) -> char {
    match c {
        '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
        '\u{201c}'..='\u{201f}' => '"',
        _ => c,
    }
}

/// Characters ftfy's `remove_control_chars` deletes; tabs, line breaks, C1
/// controls, joiners and direction marks are kept.
fn is_unwanted_control(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{8}'
            | '\u{b}'
            | '\u{e}'..='\u{1f}'
            | '\u{7f}'
            | '\u{206a}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffc}'
    )
}

/// ftfy's `remove_terminal_escapes`: `ESC [ (digit | ;)* letter`.
/// (Python's `\d` also takes non-ASCII decimal digits; we take ASCII only.)
fn remove_ansi_escapes(text: &str) -> String {
    if !text.contains('\u{1b}') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(esc) = rest.find('\u{1b}') {
        out.push_str(&rest[..esc]);
        let after = &rest[esc + 1..];
        let params = after.strip_prefix('[').map(|p| {
            let n = p
                .find(|c: char| !(c.is_ascii_digit() || c == ';'))
                .unwrap_or(p.len());
            (n, p[n..].chars().next())
        });
        match params {
            Some((n, Some(end))) if end.is_ascii_alphabetic() => rest = &after[1 + n + 1..],
            _ => {
                out.push('\u{1b}');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_is_collapsed_and_stripped() {
        assert_eq!(
            clean_text("  A\tdog \n\n on\u{a0}a  LOG  "),
            "a dog on a log"
        );
        assert_eq!(clean_text(""), "");
        assert_eq!(clean_text(" \t\r\n "), "");
        // U+001C..U+001F are spaces to Python but ftfy deletes them first.
        assert_eq!(clean_text("a\u{1c}b"), "ab");
        assert!(is_py_space('\u{1f}') && is_py_space('\u{3000}') && !is_py_space('\u{200b}'));
    }

    #[test]
    fn ftfy_subset() {
        assert_eq!(
            clean_text("\u{201c}Hello\u{201d} it\u{2019}s"),
            "\"hello\" it's"
        );
        assert_eq!(clean_text("ﬂuﬃeﬆ"), "fluffiest");
        assert_eq!(clean_text("ＬＯＵＤ\u{3000}ＮＯＩＳＥＳ"), "loud noises");
        assert_eq!(clean_text("ｶﾞ"), "ガ");
        assert_eq!(clean_text("e\u{301}"), "é");
        assert_eq!(clean_text("\u{1b}[36;44mblue\u{1b}[0m"), "blue");
        assert_eq!(clean_text("\u{93}quoted\u{94} \u{85}"), "\"quoted\" …");
        assert_eq!(clean_text("\u{feff}bom\u{7}"), "bom");
        assert_eq!(clean_text("ŉ"), "'n");
    }

    #[test]
    fn entities() {
        assert_eq!(clean_text("don&rsquo;t"), "don't");
        assert_eq!(clean_text("&amp;amp;amp;amp;"), "&");
        // With `<` in the line ftfy leaves entities alone; only the two
        // html.unescape passes run, and the curly quote survives.
        assert_eq!(
            clean_text("<b>&amp;amp;amp;</b> &rsquo;"),
            "<b>&amp;</b> \u{2019}"
        );
        assert_eq!(clean_text("P&EACUTE;REZ"), "pérez");
        assert_eq!(clean_text("fish &amp chips &lt3"), "fish & chips <3");
    }

    #[test]
    fn lower_case_is_unicode_aware() {
        assert_eq!(clean_text("ΟΔΟΣ İ ẞ"), "οδος i\u{307} ß");
    }
}
