//! PNG output: previews (RGB or RGBA) and finished images that carry text chunks (the run's
//! parameters, so that an image can be made again), and reading those chunks back without
//! decoding the pixels.
//!
//! This uses the `png` crate directly: the `image` crate's PNG encoder cannot write text
//! chunks. Text is written as iTXt (UTF-8, uncompressed, before the image data); reading
//! accepts every text chunk kind (tEXt, zTXt, iTXt) wherever it sits in the file.

use std::io::Cursor;

/// The most bytes one compressed text chunk may expand to when read (guards against a tiny
/// chunk that inflates to gigabytes).
pub const MAX_TEXT_BYTES: usize = 16 * 1024 * 1024;

/// A PNG that cannot be written or read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PngError {
    /// A text key PNG does not allow.
    #[error(
        "{0:?} cannot be a PNG text key: keys are 1 to 79 Latin-1 characters (letters, digits, \
         punctuation, single spaces between words)"
    )]
    Keyword(String),
    /// The pixel bytes do not match the size.
    #[error("a {width}x{height} {layout} image needs {expected} bytes, but {actual} were given")]
    Size {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
        /// "RGB" or "RGBA".
        layout: &'static str,
        /// Bytes the size needs.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The encoder failed (e.g. a side of 0 or over 2³¹).
    #[error("the image cannot be written as PNG: {0}")]
    Encode(String),
    /// The bytes are not a PNG file.
    #[error("not a PNG file (it does not start with the PNG signature)")]
    NotPng,
    /// The PNG is damaged or ends early.
    #[error("the PNG is corrupt or cut short ({0})")]
    Corrupt(String),
}

/// One text chunk: a key and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PngText {
    /// The keyword.
    pub keyword: String,
    /// The text.
    pub text: String,
}

/// Interleaved RGB bytes as a PNG.
pub fn encode_rgb_png(rgb: &[u8], width: usize, height: usize) -> Result<Vec<u8>, PngError> {
    encode(rgb, width, height, png::ColorType::Rgb, &[])
}

/// Interleaved RGBA bytes as a PNG.
pub fn encode_rgba_png(rgba: &[u8], width: usize, height: usize) -> Result<Vec<u8>, PngError> {
    encode(rgba, width, height, png::ColorType::Rgba, &[])
}

/// Interleaved RGB bytes as a PNG carrying `text` as iTXt chunks (UTF-8, in the order given,
/// before the image data). Keys must be valid PNG keywords (see [`PngError::Keyword`]).
pub fn encode_rgb_png_with_text(
    rgb: &[u8],
    width: usize,
    height: usize,
    text: &[(&str, &str)],
) -> Result<Vec<u8>, PngError> {
    encode(rgb, width, height, png::ColorType::Rgb, text)
}

/// Every text chunk of a PNG (tEXt, zTXt and iTXt, before or after the image data; compressed
/// ones inflated), without decoding the pixels. Grouped by kind (tEXt, zTXt, iTXt), each kind
/// in file order.
pub fn read_png_text(bytes: &[u8]) -> Result<Vec<PngText>, PngError> {
    if !bytes.starts_with(&PNG_SIGNATURE) {
        return Err(PngError::NotPng);
    }
    let corrupt = |e: png::DecodingError| PngError::Corrupt(e.to_string());
    let mut reader = png::Decoder::new(Cursor::new(bytes))
        .read_info()
        .map_err(corrupt)?;
    // Skips the image data (it is not even inflated) and reads the chunks after it.
    reader.finish().map_err(corrupt)?;
    let info = reader.info();
    let mut found = Vec::new();
    for chunk in &info.uncompressed_latin1_text {
        found.push(PngText {
            keyword: chunk.keyword.clone(),
            text: chunk.text.clone(),
        });
    }
    for chunk in &info.compressed_latin1_text {
        let mut chunk = chunk.clone();
        chunk
            .decompress_text_with_limit(MAX_TEXT_BYTES)
            .map_err(corrupt)?;
        found.push(PngText {
            keyword: chunk.keyword.clone(),
            text: chunk.get_text().map_err(corrupt)?,
        });
    }
    for chunk in &info.utf8_text {
        let mut chunk = chunk.clone();
        chunk
            .decompress_text_with_limit(MAX_TEXT_BYTES)
            .map_err(corrupt)?;
        found.push(PngText {
            keyword: chunk.keyword.clone(),
            text: chunk.get_text().map_err(corrupt)?,
        });
    }
    Ok(found)
}

/// The text of the first chunk with this key, if any (see [`read_png_text`]).
pub fn find_png_text(bytes: &[u8], keyword: &str) -> Result<Option<String>, PngError> {
    Ok(read_png_text(bytes)?
        .into_iter()
        .find(|chunk| chunk.keyword == keyword)
        .map(|chunk| chunk.text))
}

/// Whether PNG allows `keyword` as a text key: 1–79 Latin-1 printable characters, no leading,
/// trailing or consecutive spaces (PNG specification §11.3.4.3).
pub fn is_valid_keyword(keyword: &str) -> bool {
    let printable = |c: char| matches!(c as u32, 0x20..=0x7e | 0xa1..=0xff);
    let length = keyword.chars().count();
    (1..=79).contains(&length)
        && keyword.chars().all(printable)
        && !keyword.starts_with(' ')
        && !keyword.ends_with(' ')
        && !keyword.contains("  ")
}

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

fn encode(
    data: &[u8],
    width: usize,
    height: usize,
    colour: png::ColorType,
    text: &[(&str, &str)],
) -> Result<Vec<u8>, PngError> {
    let (layout, channels) = match colour {
        png::ColorType::Rgba => ("RGBA", 4),
        _ => ("RGB", 3),
    };
    let expected = width * height * channels;
    if data.len() != expected {
        return Err(PngError::Size {
            width,
            height,
            layout,
            expected,
            actual: data.len(),
        });
    }
    if let Some((bad, _)) = text.iter().find(|(key, _)| !is_valid_keyword(key)) {
        return Err(PngError::Keyword(bad.to_string()));
    }
    let side = |v: usize| u32::try_from(v).map_err(|_| PngError::Encode(format!("side {v}")));
    let encode_error = |e: png::EncodingError| PngError::Encode(e.to_string());
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side(width)?, side(height)?);
    encoder.set_color(colour);
    encoder.set_depth(png::BitDepth::Eight);
    for (key, value) in text {
        encoder
            .add_itxt_chunk(key.to_string(), value.to_string())
            .map_err(encode_error)?;
    }
    let mut writer = encoder.write_header().map_err(encode_error)?;
    writer.write_image_data(data).map_err(encode_error)?;
    writer.finish().map_err(encode_error)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_follow_the_png_rules() {
        for good in [
            "Title",
            "sow-studio:parameters",
            "Größe",
            "a b",
            &"k".repeat(79),
        ] {
            assert!(is_valid_keyword(good), "{good:?}");
        }
        for bad in [
            "",
            " a",
            "a ",
            "a  b",
            "a\tb",
            "a\0b",
            "猫",
            &"k".repeat(80),
        ] {
            assert!(!is_valid_keyword(bad), "{bad:?}");
        }
    }
}
