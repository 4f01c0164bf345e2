//! A subset of the HTML named character references, and the two ways CLIP's
//! text cleanup decodes them (ftfy's strict pass and Python's `html.unescape`).
//!
//! Python knows all 2,231 HTML5 names; we carry the HTML 4 set (Latin-1,
//! "special" and "symbol" groups, about 250 names) plus `&apos;` and the
//! all-caps spellings HTML5 defines for them. That covers what shows up in
//! scraped captions and prompts; any other name is left as literal text
//! (Python would decode e.g. `&check;` to "✓"; we keep "&check;").

/// Names of U+00A0..=U+00FF, in code point order. Every one of these may also
/// be written without the closing semicolon (HTML's "legacy" references).
const LATIN1: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", // A0
    "uml", "copy", "ordf", "laquo", "not", "shy", "reg", "macr", // A8
    "deg", "plusmn", "sup2", "sup3", "acute", "micro", "para", "middot", // B0
    "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest", // B8
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", // C0
    "Egrave", "Eacute", "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", // C8
    "ETH", "Ntilde", "Ograve", "Oacute", "Ocirc", "Otilde", "Ouml", "times", // D0
    "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute", "THORN", "szlig", // D8
    "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil", // E0
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", // E8
    "eth", "ntilde", "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", // F0
    "oslash", "ugrave", "uacute", "ucirc", "uuml", "yacute", "thorn", "yuml", // F8
];

/// The legacy (semicolon-optional) names outside Latin-1.
const LEGACY_EXTRA: [(&str, char); 10] = [
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("AMP", '&'),
    ("LT", '<'),
    ("GT", '>'),
    ("QUOT", '"'),
    ("COPY", '\u{a9}'),
    ("REG", '\u{ae}'),
];

/// Names that are only recognised with a closing semicolon.
const OTHERS: &[(&str, char)] = &[
    ("apos", '\''),
    ("TRADE", '\u{2122}'),
    // Latin extended and spacing modifiers.
    ("OElig", '\u{152}'),
    ("oelig", '\u{153}'),
    ("Scaron", '\u{160}'),
    ("scaron", '\u{161}'),
    ("Yuml", '\u{178}'),
    ("fnof", '\u{192}'),
    ("circ", '\u{2c6}'),
    ("tilde", '\u{2dc}'),
    // Greek.
    ("Alpha", '\u{391}'),
    ("Beta", '\u{392}'),
    ("Gamma", '\u{393}'),
    ("Delta", '\u{394}'),
    ("Epsilon", '\u{395}'),
    ("Zeta", '\u{396}'),
    ("Eta", '\u{397}'),
    ("Theta", '\u{398}'),
    ("Iota", '\u{399}'),
    ("Kappa", '\u{39a}'),
    ("Lambda", '\u{39b}'),
    ("Mu", '\u{39c}'),
    ("Nu", '\u{39d}'),
    ("Xi", '\u{39e}'),
    ("Omicron", '\u{39f}'),
    ("Pi", '\u{3a0}'),
    ("Rho", '\u{3a1}'),
    ("Sigma", '\u{3a3}'),
    ("Tau", '\u{3a4}'),
    ("Upsilon", '\u{3a5}'),
    ("Phi", '\u{3a6}'),
    ("Chi", '\u{3a7}'),
    ("Psi", '\u{3a8}'),
    ("Omega", '\u{3a9}'),
    ("alpha", '\u{3b1}'),
    ("beta", '\u{3b2}'),
    ("gamma", '\u{3b3}'),
    ("delta", '\u{3b4}'),
    ("epsilon", '\u{3b5}'),
    ("zeta", '\u{3b6}'),
    ("eta", '\u{3b7}'),
    ("theta", '\u{3b8}'),
    ("iota", '\u{3b9}'),
    ("kappa", '\u{3ba}'),
    ("lambda", '\u{3bb}'),
    ("mu", '\u{3bc}'),
    ("nu", '\u{3bd}'),
    ("xi", '\u{3be}'),
    ("omicron", '\u{3bf}'),
    ("pi", '\u{3c0}'),
    ("rho", '\u{3c1}'),
    ("sigmaf", '\u{3c2}'),
    ("sigma", '\u{3c3}'),
    ("tau", '\u{3c4}'),
    ("upsilon", '\u{3c5}'),
    ("phi", '\u{3c6}'),
    ("chi", '\u{3c7}'),
    ("psi", '\u{3c8}'),
    ("omega", '\u{3c9}'),
    ("thetasym", '\u{3d1}'),
    ("upsih", '\u{3d2}'),
    ("piv", '\u{3d6}'),
    // General punctuation.
    ("ensp", '\u{2002}'),
    ("emsp", '\u{2003}'),
    ("thinsp", '\u{2009}'),
    ("zwnj", '\u{200c}'),
    ("zwj", '\u{200d}'),
    ("lrm", '\u{200e}'),
    ("rlm", '\u{200f}'),
    ("ndash", '\u{2013}'),
    ("mdash", '\u{2014}'),
    ("lsquo", '\u{2018}'),
    ("rsquo", '\u{2019}'),
    ("sbquo", '\u{201a}'),
    ("ldquo", '\u{201c}'),
    ("rdquo", '\u{201d}'),
    ("bdquo", '\u{201e}'),
    ("dagger", '\u{2020}'),
    ("Dagger", '\u{2021}'),
    ("bull", '\u{2022}'),
    ("hellip", '\u{2026}'),
    ("permil", '\u{2030}'),
    ("prime", '\u{2032}'),
    ("Prime", '\u{2033}'),
    ("lsaquo", '\u{2039}'),
    ("rsaquo", '\u{203a}'),
    ("oline", '\u{203e}'),
    ("frasl", '\u{2044}'),
    ("euro", '\u{20ac}'),
    // Letter-like symbols and arrows.
    ("image", '\u{2111}'),
    ("weierp", '\u{2118}'),
    ("real", '\u{211c}'),
    ("trade", '\u{2122}'),
    ("alefsym", '\u{2135}'),
    ("larr", '\u{2190}'),
    ("uarr", '\u{2191}'),
    ("rarr", '\u{2192}'),
    ("darr", '\u{2193}'),
    ("harr", '\u{2194}'),
    ("crarr", '\u{21b5}'),
    ("lArr", '\u{21d0}'),
    ("uArr", '\u{21d1}'),
    ("rArr", '\u{21d2}'),
    ("dArr", '\u{21d3}'),
    ("hArr", '\u{21d4}'),
    // Mathematical operators.
    ("forall", '\u{2200}'),
    ("part", '\u{2202}'),
    ("exist", '\u{2203}'),
    ("empty", '\u{2205}'),
    ("nabla", '\u{2207}'),
    ("isin", '\u{2208}'),
    ("notin", '\u{2209}'),
    ("ni", '\u{220b}'),
    ("prod", '\u{220f}'),
    ("sum", '\u{2211}'),
    ("minus", '\u{2212}'),
    ("lowast", '\u{2217}'),
    ("radic", '\u{221a}'),
    ("prop", '\u{221d}'),
    ("infin", '\u{221e}'),
    ("ang", '\u{2220}'),
    ("and", '\u{2227}'),
    ("or", '\u{2228}'),
    ("cap", '\u{2229}'),
    ("cup", '\u{222a}'),
    ("int", '\u{222b}'),
    ("there4", '\u{2234}'),
    ("sim", '\u{223c}'),
    ("cong", '\u{2245}'),
    ("asymp", '\u{2248}'),
    ("ne", '\u{2260}'),
    ("equiv", '\u{2261}'),
    ("le", '\u{2264}'),
    ("ge", '\u{2265}'),
    ("sub", '\u{2282}'),
    ("sup", '\u{2283}'),
    ("nsub", '\u{2284}'),
    ("sube", '\u{2286}'),
    ("supe", '\u{2287}'),
    ("oplus", '\u{2295}'),
    ("otimes", '\u{2297}'),
    ("perp", '\u{22a5}'),
    ("sdot", '\u{22c5}'),
    // Miscellaneous technical and symbols (HTML5 moved lang/rang to U+27E8/9).
    ("lceil", '\u{2308}'),
    ("rceil", '\u{2309}'),
    ("lfloor", '\u{230a}'),
    ("rfloor", '\u{230b}'),
    ("lang", '\u{27e8}'),
    ("rang", '\u{27e9}'),
    ("loz", '\u{25ca}'),
    ("spades", '\u{2660}'),
    ("clubs", '\u{2663}'),
    ("hearts", '\u{2665}'),
    ("diams", '\u{2666}'),
];

/// The character for a legacy name, i.e. one HTML accepts without `;`.
fn legacy(name: &str) -> Option<char> {
    if let Some(i) = LATIN1.iter().position(|n| *n == name) {
        // `i < 96`, so this stays inside Latin-1.
        return char::from_u32(0xa0 + i as u32);
    }
    LEGACY_EXTRA
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
}

/// The character for `&name;` (exact, case-sensitive spelling).
fn named(name: &str) -> Option<char> {
    legacy(name).or_else(|| OTHERS.iter().find(|(n, _)| *n == name).map(|(_, c)| *c))
}

/// Characters Python's `html.unescape` substitutes for some numeric references
/// (the C1 range is read as Windows-1252, as browsers do).
fn numeric_override(num: u32) -> Option<char> {
    Some(match num {
        0x00 => '\u{fffd}',
        0x0d => '\r',
        0x80..=0x9f => windows_1252_c1(u8::try_from(num).ok()?),
        _ => return None,
    })
}

/// Windows-1252's reading of a C1 byte; the five bytes it leaves undefined
/// stay as the C1 control (Python's "sloppy" codec and `html` both do this).
pub(super) fn windows_1252_c1(b: u8) -> char {
    match b {
        0x80 => '\u{20ac}',
        0x82 => '\u{201a}',
        0x83 => '\u{192}',
        0x84 => '\u{201e}',
        0x85 => '\u{2026}',
        0x86 => '\u{2020}',
        0x87 => '\u{2021}',
        0x88 => '\u{2c6}',
        0x89 => '\u{2030}',
        0x8a => '\u{160}',
        0x8b => '\u{2039}',
        0x8c => '\u{152}',
        0x8e => '\u{17d}',
        0x91 => '\u{2018}',
        0x92 => '\u{2019}',
        0x93 => '\u{201c}',
        0x94 => '\u{201d}',
        0x95 => '\u{2022}',
        0x96 => '\u{2013}',
        0x97 => '\u{2014}',
        0x98 => '\u{2dc}',
        0x99 => '\u{2122}',
        0x9a => '\u{161}',
        0x9b => '\u{203a}',
        0x9c => '\u{153}',
        0x9e => '\u{17e}',
        0x9f => '\u{178}',
        other => char::from(other),
    }
}

/// Decodes a numeric reference the way Python's `html` module does: some
/// values are replaced, out-of-range ones become U+FFFD, and control or
/// noncharacter code points vanish (`None` here means "insert nothing").
fn decode_number(num: u32) -> Option<char> {
    if let Some(c) = numeric_override(num) {
        return Some(c);
    }
    if (0xd800..=0xdfff).contains(&num) || num > 0x10ffff {
        return Some('\u{fffd}');
    }
    let dropped = matches!(num, 0x01..=0x08 | 0x0b | 0x0e..=0x1f | 0x7f..=0x9f | 0xfdd0..=0xfdef)
        || (num & 0xfffe) == 0xfffe;
    if dropped {
        None
    } else {
        char::from_u32(num)
    }
}

/// Parses the digits of a numeric reference, saturating (anything past
/// U+10FFFF is treated alike, so the exact value does not matter).
fn parse_number(digits: &str, radix: u32) -> u32 {
    digits.chars().fold(0u32, |acc, c| {
        let d = c.to_digit(radix).unwrap_or(0);
        acc.saturating_mul(radix).saturating_add(d).min(0x0011_0000)
    })
}

/// Python's `html.unescape`: numeric references with or without `;`, named
/// references, and HTML's rule that a legacy name may be a prefix of a longer
/// run of letters (`&copy2024` is "©2024").
pub(super) fn html_unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        match unescape_one(after, &mut out) {
            Some(consumed) => rest = &after[consumed..],
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Tries to decode the reference that follows a `&`. On success appends the
/// replacement and returns how many bytes of `after` it used.
fn unescape_one(after: &str, out: &mut String) -> Option<usize> {
    if let Some(num) = after.strip_prefix('#') {
        let (radix, body, skip) = match num.strip_prefix(['x', 'X']) {
            Some(hex) => (16, hex, 2),
            None => (10, num, 1),
        };
        let len = body
            .find(|c: char| !c.is_ascii() || c.to_digit(radix).is_none())
            .unwrap_or(body.len());
        if len == 0 {
            return None;
        }
        out.extend(decode_number(parse_number(&body[..len], radix)));
        let semi = usize::from(body[len..].starts_with(';'));
        return Some(skip + len + semi);
    }
    // A name is up to 32 characters other than these, plus an optional `;`.
    let stop = |c: char| matches!(c, '\t' | '\n' | '\x0c' | ' ' | '<' | '&' | '#' | ';');
    let mut name_end = after.len();
    for (count, (i, c)) in after.char_indices().enumerate() {
        if count == 32 || stop(c) {
            name_end = i;
            break;
        }
    }
    if name_end == 0 {
        return None;
    }
    let name = &after[..name_end];
    let has_semi = after[name_end..].starts_with(';');
    if has_semi {
        if let Some(c) = named(name) {
            out.push(c);
            return Some(name_end + 1);
        }
    } else if let Some(c) = legacy(name) {
        out.push(c);
        return Some(name_end);
    }
    // Longest legacy prefix of at least two characters; the rest of the run
    // (and its `;`) is kept as text. Without `;` the full name was tried above.
    let consumed = name_end + usize::from(has_semi);
    let full = &after[..consumed];
    let mut ends: Vec<usize> = name.char_indices().map(|(i, _)| i).skip(2).collect();
    if has_semi {
        ends.push(name_end);
    }
    for &end in ends.iter().rev() {
        if let Some(c) = legacy(&name[..end]) {
            out.push(c);
            out.push_str(&full[end..]);
            return Some(consumed);
        }
    }
    None
}

/// ftfy's stricter decoder: only `&name;` and `&#digits;` / `&#xhex;` with the
/// semicolon, and (ftfy's addition) an all-caps spelling of a lower-case name
/// such as `&EACUTE;` -> "É", unless HTML already reads that spelling.
pub(super) fn ftfy_unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        match ftfy_one(after) {
            Some((replacement, consumed)) => {
                out.push_str(&replacement);
                rest = &after[consumed..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Matches `#?[0-9A-Za-z]{1,24};` after a `&` and decodes it if ftfy would.
fn ftfy_one(after: &str) -> Option<(String, usize)> {
    let (hash, body_start) = if after.starts_with('#') {
        (true, 1)
    } else {
        (false, 0)
    };
    let body_all = &after[body_start..];
    let len = body_all
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(body_all.len());
    if len == 0 || len > 24 || !body_all[len..].starts_with(';') {
        return None;
    }
    let body = &body_all[..len];
    let consumed = body_start + len + 1;
    if hash {
        // ftfy hands `&#...;` to html.unescape and keeps it only if the whole
        // reference, semicolon included, was used up.
        let (radix, digits) = match body.strip_prefix(['x', 'X']) {
            Some(hex) => (16, hex),
            None => (10, body),
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        let decoded = decode_number(parse_number(digits, radix));
        // `&#59;` decodes to ";" itself, which ftfy reads as "not fully used".
        if decoded == Some(';') {
            return None;
        }
        return Some((decoded.into_iter().collect(), consumed));
    }
    if let Some(c) = named(body) {
        return Some((c.to_string(), consumed));
    }
    let lower = body.to_ascii_lowercase();
    let all_caps = body.bytes().all(|b| !b.is_ascii_lowercase()) && lower != body;
    if all_caps && named(&lower).is_some() && !has_legacy_prefix(body) {
        let c = named(&lower)?;
        return Some((c.to_uppercase().collect(), consumed));
    }
    None
}

/// Whether `html.unescape` would decode a prefix of `&NAME;` (so ftfy does
/// not add an all-caps alias for it).
fn has_legacy_prefix(name: &str) -> bool {
    (2..=name.len()).any(|end| legacy(&name[..end]).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_table_lines_up() {
        assert_eq!(legacy("nbsp"), Some('\u{a0}'));
        assert_eq!(legacy("eacute"), Some('é'));
        assert_eq!(legacy("yuml"), Some('ÿ'));
        assert_eq!(named("hellip"), Some('…'));
        assert_eq!(named("hellip"), named("hellip"));
        assert_eq!(legacy("hellip"), None);
    }

    #[test]
    fn html_unescape_matches_python() {
        // Expected values from CPython 3.11's html.unescape.
        let cases = [
            ("a &amp; b", "a & b"),
            ("&amp", "&"),
            ("&ampx", "&x"),
            ("&lt3", "<3"),
            ("AT&T", "AT&T"),
            ("&notit;", "¬it;"),
            ("&notin;", "∉"),
            ("&copy2024", "©2024"),
            ("&#65;&#x42;&#X43", "ABC"),
            ("&#65abc", "Aabc"),
            ("&#0;", "\u{fffd}"),
            ("&#1;x", "x"),
            ("&#128;", "€"),
            ("&#x110000;", "\u{fffd}"),
            ("&#xD800;", "\u{fffd}"),
            ("& ;", "& ;"),
            ("&#;", "&#;"),
            ("&#x;", "&#x;"),
            ("&unknown;", "&unknown;"),
            ("&amp;amp;", "&amp;"),
            ("&EACUTE;", "&EACUTE;"),
            ("&Eacute;", "É"),
        ];
        for (input, want) in cases {
            assert_eq!(html_unescape(input), want, "input {input:?}");
        }
    }

    #[test]
    fn ftfy_unescape_is_strict() {
        let cases = [
            ("&amp", "&amp"),
            ("&amp;", "&"),
            ("&EACUTE;", "É"),
            ("&SZLIG;", "SS"),
            ("&nTILDE;", "&nTILDE;"),
            ("&#x2019;", "\u{2019}"),
            ("&#65a;", "&#65a;"),
            ("&#x1F600;", "😀"),
            ("&notit;", "&notit;"),
            ("&AMP;", "&"),
            ("&#59;", "&#59;"),
        ];
        for (input, want) in cases {
            assert_eq!(ftfy_unescape(input), want, "input {input:?}");
        }
    }
}
