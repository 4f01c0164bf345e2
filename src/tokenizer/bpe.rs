//! Byte-level BPE as in GPT-2/CLIP, run on vocabulary ids rather than strings.
//!
//! Working on ids is equivalent to open_clip's string version because the
//! loader checks that every symbol BPE can produce (the 512 byte symbols and
//! every merge result) has its own id.

use std::collections::HashMap;

/// CLIP's end-of-word marker, glued to the last symbol of every piece.
pub(super) const END_OF_WORD: &str = "</w>";

/// The character standing for each byte in vocabulary strings. Printable
/// Latin-1 bytes stand for themselves; the other 68 (controls, space, DEL,
/// NBSP, soft hyphen) are given U+0100.. in byte order, so no symbol holds
/// whitespace or a control character.
pub(super) const BYTE_CHARS: [char; 256] = byte_chars();

const fn byte_chars() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 0x100;
    let mut b = 0;
    while b < 256 {
        let printable = matches!(b, 0x21..=0x7e | 0xa1..=0xac | 0xae..=0xff);
        let code = if printable {
            b
        } else {
            next += 1;
            next - 1
        };
        table[b as usize] = match char::from_u32(code) {
            Some(c) => c,
            None => panic!("byte table code point out of range"),
        };
        b += 1;
    }
    table
}

/// What a pair of adjacent symbols merges into, and how early it does.
#[derive(Clone, Copy, Debug)]
pub(super) struct Merge {
    /// Line order in merges.txt; lower merges first.
    pub(super) rank: u32,
    /// Id of the concatenated symbol.
    pub(super) merged: u32,
}

/// Applies merges to `word` (a piece's symbol ids) until none applies:
/// each round takes the lowest-ranked adjacent pair and merges every
/// occurrence of it, left to right.
pub(super) fn apply_merges(word: &mut Vec<u32>, merges: &HashMap<(u32, u32), Merge>) {
    let mut next = Vec::with_capacity(word.len());
    while word.len() > 1 {
        let best = word
            .windows(2)
            .filter_map(|w| {
                merges
                    .get(&(w[0], w[1]))
                    .map(|m| (m.rank, w[0], w[1], m.merged))
            })
            .min_by_key(|&(rank, ..)| rank);
        let Some((_, left, right, merged)) = best else {
            break;
        };
        next.clear();
        let mut i = 0;
        while i < word.len() {
            if word[i] == left && word.get(i + 1) == Some(&right) {
                next.push(merged);
                i += 2;
            } else {
                next.push(word[i]);
                i += 1;
            }
        }
        std::mem::swap(word, &mut next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_matches_clip() {
        assert_eq!(BYTE_CHARS[b'a' as usize], 'a');
        assert_eq!(BYTE_CHARS[b'!' as usize], '!');
        assert_eq!(BYTE_CHARS[0], '\u{100}');
        assert_eq!(BYTE_CHARS[b' ' as usize], '\u{120}');
        assert_eq!(BYTE_CHARS[0x7f], '\u{121}');
        assert_eq!(BYTE_CHARS[0xa0], '\u{142}');
        assert_eq!(BYTE_CHARS[0xad], '\u{143}');
        assert_eq!(BYTE_CHARS[0xe9], 'é');
        // A bijection onto 256 distinct characters.
        let mut all: Vec<char> = BYTE_CHARS.to_vec();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 256);
    }

    #[test]
    fn lowest_rank_first_and_all_occurrences() {
        // ids: a=1 b=2 ab=3 abab=4 bb=5
        let merges = HashMap::from([
            ((1, 2), Merge { rank: 0, merged: 3 }),
            ((3, 3), Merge { rank: 1, merged: 4 }),
            ((2, 2), Merge { rank: 2, merged: 5 }),
        ]);
        let mut w = vec![1, 2, 1, 2, 2, 2];
        apply_merges(&mut w, &merges);
        // a b a b b b -> ab ab b b -> abab b b -> abab bb
        assert_eq!(w, [4, 5]);
        let mut single = vec![7];
        apply_merges(&mut single, &merges);
        assert_eq!(single, [7]);
        // Non-overlapping, left to right: b b b -> bb b.
        let mut w = vec![2, 2, 2];
        apply_merges(&mut w, &merges);
        assert_eq!(w, [5, 2]);
    }
}
