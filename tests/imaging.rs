//! The host-side image layer (src/imaging/): decoding (EXIF orientation, alpha, depth, bad and
//! oversized files), conditions (crop, mask, latent mask, canvas) and PNG text chunks. Every
//! input is made here: encoded with the `image` or `png` crate, or its bytes built by hand.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};
use sow_studio::imaging::condition::{
    compose_canvas, prepare_condition, prepare_condition_files, ConditionError,
};
use sow_studio::imaging::decode::{decode_image, decode_mask, DecodeError};
use sow_studio::imaging::png::{
    encode_rgb_png, encode_rgb_png_with_text, encode_rgba_png, find_png_text, read_png_text,
    PngError, PngText,
};
use sow_studio::imaging::{GeometryError, GridMask, SquareBox};

// ---------------------------------------------------------------------------------------------
// The largest single allocation made on the current thread, to show that oversized images are
// refused from their header alone.

struct TrackLargest;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

unsafe impl GlobalAlloc for TrackLargest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: TrackLargest = TrackLargest;

/// Runs `f` and returns its result with the largest allocation it made on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|largest| largest.set(0));
    let result = f();
    (result, LARGEST.with(Cell::get))
}

// ---------------------------------------------------------------------------------------------
// Building test files.

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encodes");
    out.into_inner()
}

fn jpeg(image: &DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 100)
        .encode_image(image)
        .expect("encodes");
    out
}

fn webp(image: &DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    image
        .write_with_encoder(WebPEncoder::new_lossless(&mut out))
        .expect("encodes");
    out
}

/// CRC-32 (ISO-HDLC), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG chunk: length, type, data, CRC of type and data.
fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    chunk.extend_from_slice(&crc32(&chunk[4..]).to_be_bytes());
    chunk
}

/// A big-endian TIFF structure with one IFD entry: Orientation (0x0112) = `orientation`.
fn exif_orientation(orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a".to_vec();
    tiff.extend_from_slice(&8u32.to_be_bytes()); // first IFD at offset 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // tag: Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // type: SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding to 4 bytes
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    tiff
}

/// A JPEG with an APP1 Exif segment right after its SOI marker.
fn jpeg_with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&exif_orientation(orientation));
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A PNG with an eXIf chunk right after IHDR (signature 8 bytes + IHDR 25 bytes).
fn png_with_orientation(png: &[u8], orientation: u16) -> Vec<u8> {
    let mut out = png[..33].to_vec();
    out.extend_from_slice(&png_chunk(b"eXIf", &exif_orientation(orientation)));
    out.extend_from_slice(&png[33..]);
    out
}

/// A lossless (simple-format) WebP rewritten in the extended format with an EXIF chunk.
fn webp_with_orientation(webp: &[u8], width: u32, height: u32, orientation: u16) -> Vec<u8> {
    assert_eq!(&webp[12..16], b"VP8L", "a simple lossless WebP");
    let image_chunk = &webp[12..];
    let mut vp8x = vec![0x08, 0, 0, 0]; // flags: EXIF present
    vp8x.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    let riff_chunk = |kind: &[u8; 4], data: &[u8]| {
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(&(data.len() as u32).to_le_bytes());
        chunk.extend_from_slice(data);
        if data.len() % 2 == 1 {
            chunk.push(0);
        }
        chunk
    };
    let mut body = b"WEBP".to_vec();
    body.extend_from_slice(&riff_chunk(b"VP8X", &vp8x));
    body.extend_from_slice(image_chunk);
    body.extend_from_slice(&riff_chunk(b"EXIF", &exif_orientation(orientation)));
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Six 16×16 blocks of distinct colours, 3 across and 2 down (48×32): any rotation or flip
/// moves a recognisable colour to a known place.
const BLOCK_COLOURS: [[u8; 3]; 6] = [
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [255, 255, 0],
    [0, 255, 255],
    [255, 0, 255],
];

fn blocks() -> DynamicImage {
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(48, 32, |x, y| {
        Rgb(BLOCK_COLOURS[(y / 16 * 3 + x / 16) as usize])
    }))
}

fn close(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(&b).all(|(x, y)| x.abs_diff(*y) <= tolerance)
}

/// Checks that every block's centre landed where `to` sends it in a `width`×`height` result.
fn assert_blocks_moved(
    decoded: &sow_studio::imaging::RgbImage,
    size: (usize, usize),
    to: impl Fn(usize, usize) -> (usize, usize),
    tolerance: u8,
    what: &str,
) {
    assert_eq!((decoded.width(), decoded.height()), size, "{what}: size");
    for by in 0..2 {
        for bx in 0..3 {
            let (x, y) = to(bx * 16 + 8, by * 16 + 8);
            let got = decoded.pixel(x, y);
            let want = BLOCK_COLOURS[by * 3 + bx];
            assert!(
                close(got, want, tolerance),
                "{what}: block ({bx}, {by}) should be {want:?} at ({x}, {y}), found {got:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding.

#[test]
fn jpeg_exif_orientation_rotates_and_flips() {
    let base = jpeg(&blocks());
    let (w, h) = (48usize, 32usize);
    // No Exif, and orientation 1: as stored.
    for bytes in [base.clone(), jpeg_with_orientation(&base, 1)] {
        let decoded = decode_image(&bytes, "upright.jpg").unwrap();
        assert_blocks_moved(&decoded.rgb, (w, h), |x, y| (x, y), 24, "orientation 1");
        assert!(decoded.alpha.is_none());
    }
    // 3: rotated 180°, i.e. both axes flipped.
    let decoded = decode_image(&jpeg_with_orientation(&base, 3), "o3.jpg").unwrap();
    assert_blocks_moved(
        &decoded.rgb,
        (w, h),
        |x, y| (w - 1 - x, h - 1 - y),
        24,
        "orientation 3",
    );
    // 6: shown rotated 90° clockwise: stored (x, y) lands at (h − 1 − y, x).
    let decoded = decode_image(&jpeg_with_orientation(&base, 6), "o6.jpg").unwrap();
    assert_blocks_moved(
        &decoded.rgb,
        (h, w),
        |x, y| (h - 1 - y, x),
        24,
        "orientation 6",
    );
    // 8: shown rotated 90° counter-clockwise: stored (x, y) lands at (y, w − 1 − x).
    let decoded = decode_image(&jpeg_with_orientation(&base, 8), "o8.jpg").unwrap();
    assert_blocks_moved(
        &decoded.rgb,
        (h, w),
        |x, y| (y, w - 1 - x),
        24,
        "orientation 8",
    );
}

#[test]
fn png_and_webp_exif_orientation_is_honoured() {
    let (w, h) = (48usize, 32usize);
    let png = encode(&blocks(), ImageFormat::Png);
    let decoded = decode_image(&png_with_orientation(&png, 6), "o6.png").unwrap();
    assert_blocks_moved(&decoded.rgb, (h, w), |x, y| (h - 1 - y, x), 0, "PNG eXIf 6");
    let decoded = decode_image(&png_with_orientation(&png, 3), "o3.png").unwrap();
    assert_blocks_moved(
        &decoded.rgb,
        (w, h),
        |x, y| (w - 1 - x, h - 1 - y),
        0,
        "PNG eXIf 3",
    );

    let webp = webp(&blocks());
    let plain = decode_image(&webp, "plain.webp").unwrap();
    assert_blocks_moved(&plain.rgb, (w, h), |x, y| (x, y), 0, "WebP");
    let rotated = webp_with_orientation(&webp, w as u32, h as u32, 8);
    let decoded = decode_image(&rotated, "o8.webp").unwrap();
    assert_blocks_moved(
        &decoded.rgb,
        (h, w),
        |x, y| (y, w - 1 - x),
        0,
        "WebP EXIF 8",
    );
}

#[test]
fn alpha_is_flattened_onto_gray_and_kept_as_the_implied_mask() {
    // One row: opaque red, alpha 128 and 127 (the keep/discard edge), transparent blue.
    let pixels = [
        [255, 0, 0, 255],
        [255, 255, 255, 128],
        [0, 0, 0, 127],
        [0, 0, 255, 0],
    ];
    let image =
        DynamicImage::ImageRgba8(ImageBuffer::from_fn(4, 1, |x, _| Rgba(pixels[x as usize])));
    for (bytes, what) in [
        (encode(&image, ImageFormat::Png), "PNG"),
        (webp(&image), "WebP"),
    ] {
        let decoded = decode_image(&bytes, what).unwrap();
        // (c·a + 128·(255 − a)) / 255, rounded.
        let want = [[255, 0, 0], [192, 192, 192], [64, 64, 64], [128, 128, 128]];
        for (x, want) in want.iter().enumerate() {
            assert_eq!(decoded.rgb.pixel(x, 0), *want, "{what}: pixel {x}");
        }
        let alpha = decoded.alpha.as_ref().expect("the alpha is kept");
        assert_eq!(alpha.values(), &[255, 128, 127, 0]);
        // The implied mask keeps alpha ≥ 128 (black = keep once binarized at 128).
        let implied = decoded.implied_mask().unwrap();
        let kept: Vec<bool> = implied.values().iter().map(|&v| v < 128).collect();
        assert_eq!(kept, [true, true, false, false], "{what}");
    }
}

#[test]
fn grayscale_and_16_bit_images_become_8_bit_rgb() {
    let gray = DynamicImage::ImageLuma8(ImageBuffer::from_fn(3, 2, |x, y| {
        Luma([(x * 40 + y * 100) as u8])
    }));
    let decoded = decode_image(&encode(&gray, ImageFormat::Png), "gray.png").unwrap();
    assert_eq!(decoded.rgb.pixel(2, 1), [180, 180, 180]);
    assert!(decoded.alpha.is_none());
    let decoded = decode_image(&jpeg(&gray), "gray.jpg").unwrap();
    assert!(close(decoded.rgb.pixel(2, 1), [180, 180, 180], 3));

    // 16-bit: v16 = v8 · 257 scales back to exactly v8.
    let deep = DynamicImage::ImageRgb16(ImageBuffer::from_fn(3, 2, |x, y| {
        Rgb([x as u16 * 257 * 50, y as u16 * 257 * 200, 65535])
    }));
    let decoded = decode_image(&encode(&deep, ImageFormat::Png), "deep.png").unwrap();
    assert_eq!(decoded.rgb.pixel(2, 1), [100, 200, 255]);
    // A value between two 8-bit levels rounds to the nearer.
    let between =
        DynamicImage::ImageLuma16(ImageBuffer::from_fn(1, 1, |_, _| Luma([257 * 10 + 200])));
    let decoded = decode_image(&encode(&between, ImageFormat::Png), "between.png").unwrap();
    assert_eq!(decoded.rgb.pixel(0, 0), [11, 11, 11]);
    // 16-bit gray with alpha.
    let gray_alpha =
        DynamicImage::ImageLumaA16(ImageBuffer::from_fn(1, 1, |_, _| LumaA([65535, 0])));
    let decoded = decode_image(&encode(&gray_alpha, ImageFormat::Png), "ga.png").unwrap();
    assert_eq!(decoded.rgb.pixel(0, 0), [128, 128, 128]);
    assert_eq!(decoded.alpha.unwrap().values(), &[0]);
}

#[test]
fn empty_unknown_unsupported_and_damaged_files_are_named_errors() {
    let label = "holiday.png";
    match decode_image(&[], label) {
        Err(e @ DecodeError::Empty { .. }) => assert!(e.to_string().starts_with(label)),
        other => panic!("empty input: {other:?}"),
    }
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    assert!(matches!(
        decode_image(&random, label),
        Err(DecodeError::UnknownFormat { .. })
    ));
    let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec();
    match decode_image(&gif, label) {
        Err(e @ DecodeError::UnsupportedFormat { .. }) => {
            assert!(e.to_string().contains("GIF"), "{e}")
        }
        other => panic!("GIF: {other:?}"),
    }

    // A PNG cut short at any point past its signature.
    let png = encode(&blocks(), ImageFormat::Png);
    for cut in [9, 20, 33, 40, png.len() / 2, png.len() - 13] {
        match decode_image(&png[..cut], label) {
            Err(e @ DecodeError::Corrupt { .. }) => {
                assert!(e.to_string().starts_with(label), "{e}")
            }
            other => panic!("PNG cut at {cut} of {}: {other:?}", png.len()),
        }
    }
    // The PNG signature followed by garbage.
    let mut garbage = png[..8].to_vec();
    garbage.extend_from_slice(&random[..200]);
    assert!(matches!(
        decode_image(&garbage, label),
        Err(DecodeError::Corrupt { .. })
    ));
    // A JPEG cut inside its headers, or inside its image data (which the JPEG decoder alone
    // would accept, filling the rest).
    let noise = DynamicImage::ImageRgb8(ImageBuffer::from_fn(128, 128, |x, y| {
        Rgb([(x * 7 + y * 13) as u8, (x * y) as u8, (x ^ y) as u8])
    }));
    let jpeg = jpeg(&noise);
    for cut in [30, jpeg.len() / 2, jpeg.len() - 2] {
        match decode_image(&jpeg[..cut], label) {
            Err(DecodeError::Corrupt { .. }) => {}
            other => panic!("JPEG cut at {cut} of {}: {other:?}", jpeg.len()),
        }
    }
    assert!(decode_image(&jpeg, label).is_ok());
    let webp = webp(&blocks());
    assert!(matches!(
        decode_image(&webp[..24], label),
        Err(DecodeError::Corrupt { .. })
    ));
}

#[test]
fn oversized_images_are_refused_from_the_header_without_allocating_the_pixels() {
    let ihdr = |width: u32, height: u32| {
        let mut data = width.to_be_bytes().to_vec();
        data.extend_from_slice(&height.to_be_bytes());
        data.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
        let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
        png.extend_from_slice(&png_chunk(b"IHDR", &data));
        png.extend_from_slice(&png_chunk(
            b"IDAT",
            &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        ));
        png.extend_from_slice(&png_chunk(b"IEND", &[]));
        png
    };
    // Over the per-side limit (400 megapixels), then under it but over 50 megapixels.
    for (width, height) in [(20_000, 20_000), (8_000, 8_000), (100, 16_385)] {
        let (result, largest) =
            largest_allocation(|| decode_image(&ihdr(width, height), "huge.png"));
        match result {
            Err(e @ DecodeError::TooLarge { .. }) => {
                let message = e.to_string();
                assert!(message.contains(&format!("{width}x{height}")), "{message}");
            }
            other => panic!("{width}x{height} PNG: {other:?}"),
        }
        assert!(
            largest < 1 << 20,
            "{width}x{height}: allocated {largest} bytes at once"
        );
    }
    // 50 megapixels exactly pass the size check (and then fail on the missing pixel data).
    let result = decode_image(&ihdr(10_000, 5_000), "at-the-limit.png");
    assert!(
        matches!(result, Err(DecodeError::Corrupt { .. })),
        "{result:?}"
    );

    // A JPEG whose frame header claims 20000×20000.
    let mut jpeg = jpeg(&blocks());
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xff, 0xc0])
        .expect("a baseline frame header");
    jpeg[sof + 5..sof + 7].copy_from_slice(&20_000u16.to_be_bytes()); // height
    jpeg[sof + 7..sof + 9].copy_from_slice(&20_000u16.to_be_bytes()); // width
    let (result, largest) = largest_allocation(|| decode_image(&jpeg, "huge.jpg"));
    assert!(
        matches!(
            result,
            Err(DecodeError::TooLarge {
                width: 20_000,
                height: 20_000,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(largest < 1 << 20, "JPEG: allocated {largest} bytes at once");

    // A lossless WebP whose header claims 16383×16383 (268 megapixels; 14 bits hold side − 1).
    let mut webp = webp(&blocks());
    let bits = u32::from_le_bytes(webp[21..25].try_into().unwrap());
    let bits = (bits & 0xf000_0000) | 16_382 | (16_382 << 14);
    webp[21..25].copy_from_slice(&bits.to_le_bytes());
    let (result, largest) = largest_allocation(|| decode_image(&webp, "huge.webp"));
    assert!(
        matches!(
            result,
            Err(DecodeError::TooLarge {
                width: 16_383,
                height: 16_383,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(largest < 1 << 20, "WebP: allocated {largest} bytes at once");
}

#[test]
fn damaged_files_never_panic() {
    // Deterministic damage: flipped bytes and cuts at many places of small valid files.
    let files = [
        encode(&blocks(), ImageFormat::Png),
        jpeg(&blocks()),
        webp(&blocks()),
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for file in &files {
        for _ in 0..150 {
            let mut bytes = file.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            if next() % 3 == 0 {
                bytes.truncate(1 + (next() % bytes.len() as u64) as usize);
            }
            // Any outcome but a panic is fine; an image that decodes must be whole.
            if let Ok(decoded) = decode_image(&bytes, "damaged") {
                let rgb = decoded.rgb;
                assert_eq!(rgb.pixels().len(), rgb.width() * rgb.height() * 3);
            }
        }
    }
}

#[test]
fn masks_decode_to_luma() {
    let mask = DynamicImage::ImageRgb8(ImageBuffer::from_fn(4, 1, |x, _| {
        Rgb([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255]][x as usize])
    }));
    let gray = decode_mask(&encode(&mask, ImageFormat::Png), "mask.png").unwrap();
    // BT.601: 0.299·R + 0.587·G + 0.114·B.
    assert_eq!(gray.values(), &[0, 255, 76, 29]);
}

// ---------------------------------------------------------------------------------------------
// Conditions and the canvas.

fn png_of(width: u32, height: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    encode(
        &DynamicImage::ImageRgb8(ImageBuffer::from_fn(width, height, |x, y| Rgb(f(x, y)))),
        ImageFormat::Png,
    )
}

fn gray_png(width: u32, height: u32, f: impl Fn(u32, u32) -> u8) -> Vec<u8> {
    encode(
        &DynamicImage::ImageLuma8(ImageBuffer::from_fn(width, height, |x, y| Luma([f(x, y)]))),
        ImageFormat::Png,
    )
}

#[test]
fn an_image_of_the_box_size_is_used_byte_for_byte() {
    let pattern = |x: u32, y: u32| [(x * 37 + y * 11) as u8, (x * y) as u8, (255 - x * 3) as u8];
    let bytes = png_of(64, 64, pattern);
    let prepared =
        prepare_condition_files(&bytes, "face.png", None, SquareBox::new(64, 0, 64)).unwrap();
    let want: Vec<u8> = (0..64)
        .flat_map(|y| (0..64).flat_map(move |x| pattern(x, y)))
        .collect();
    assert_eq!(prepared.crop_rgb, want);
    assert!(prepared.keep_pixels.iter().all(|&k| k));
    assert_eq!(
        prepared.keep_latent,
        GridMask::from_cells(8, 8, vec![true; 64]).unwrap()
    );
}

#[test]
fn non_square_images_are_cut_to_their_centred_square_then_resized() {
    let pattern = |x: u32, y: u32| [(x * 5) as u8, (y * 7) as u8, 9];
    // 48×32 for a 32 box: the centred 32×32 square (columns 8..40), no resampling.
    let prepared = prepare_condition_files(
        &png_of(48, 32, pattern),
        "wide.png",
        None,
        SquareBox::new(0, 0, 32),
    )
    .unwrap();
    let want: Vec<u8> = (0..32)
        .flat_map(|y| (0..32).flat_map(move |x| pattern(x + 8, y)))
        .collect();
    assert_eq!(prepared.crop_rgb, want);
    // 20×30 for a 16 box: rows 5..25, then resized; a uniform colour stays exactly uniform.
    let prepared = prepare_condition_files(
        &png_of(20, 30, |_, _| [10, 200, 30]),
        "tall.png",
        None,
        SquareBox::new(0, 0, 16),
    )
    .unwrap();
    assert_eq!(prepared.crop_rgb, [10, 200, 30].repeat(16 * 16));
    // Left half red, right half blue, downscaled 2×: the halves stay apart.
    let prepared = prepare_condition_files(
        &png_of(
            64,
            64,
            |x, _| if x < 32 { [255, 0, 0] } else { [0, 0, 255] },
        ),
        "halves.png",
        None,
        SquareBox::new(0, 0, 32),
    )
    .unwrap();
    let at = |x: usize, y: usize| &prepared.crop_rgb[(y * 32 + x) * 3..(y * 32 + x) * 3 + 3];
    assert_eq!(at(0, 5), [255, 0, 0]);
    assert_eq!(at(31, 20), [0, 0, 255]);
    assert!(at(15, 0)[0] > 200 && at(16, 0)[2] > 200);
}

#[test]
fn a_mask_gives_the_crop_and_the_latent_mask_by_the_nearest_rule() {
    // A 32×32 image and mask (black = keep): three single black pixels on the latent grid's
    // sample points (8i, 8j), and a black block covering latent cell (2, 0) except its sample
    // point (16, 0).
    let image = png_of(32, 32, |x, y| [x as u8 * 8, y as u8 * 8, 77]);
    let kept_points = [(0u32, 0u32), (1, 2), (3, 3)]; // (row, col)
    let mask = gray_png(32, 32, |x, y| {
        let on_point = kept_points.iter().any(|&(r, c)| x == c * 8 && y == r * 8);
        let in_block = (16..24).contains(&y) && x < 8 && !(x == 0 && y == 16);
        if on_point || in_block {
            0
        } else {
            255
        }
    });
    let prepared =
        prepare_condition_files(&image, "cat.png", Some(&mask), SquareBox::new(8, 16, 32)).unwrap();
    let mut want = GridMask::new(4, 4);
    for (r, c) in kept_points {
        want.set(r as usize, c as usize, true);
    }
    assert_eq!(prepared.keep_latent, want);
    // The crop: image pixels where kept, gray elsewhere.
    let at = |x: usize, y: usize| &prepared.crop_rgb[(y * 32 + x) * 3..(y * 32 + x) * 3 + 3];
    assert_eq!(at(16, 8), [128, 64, 77]); // (row 1, col 2) sample point: kept
    assert_eq!(at(1, 17), [8, 136, 77]); // in the block: kept
    assert_eq!(at(0, 16), [128, 128, 128]); // the block's hole
    assert_eq!(at(5, 5), [128, 128, 128]);
    assert_eq!(
        prepared.keep_pixels.iter().filter(|&&k| k).count(),
        3 + 8 * 8 - 1
    );
}

#[test]
fn masks_are_resized_like_their_image_and_binarized_at_128() {
    // A 64×64 mask whose left half is black (keep) for a 32 box; gray 127 keeps, 128 does not.
    let image = png_of(64, 64, |_, _| [200, 100, 50]);
    let mask = gray_png(64, 64, |x, y| {
        if x < 32 {
            0
        } else if y < 32 {
            127
        } else {
            128
        }
    });
    let prepared =
        prepare_condition_files(&image, "x.png", Some(&mask), SquareBox::new(0, 0, 32)).unwrap();
    let keep = |x: usize, y: usize| prepared.keep_pixels[y * 32 + x];
    assert!(
        (0..32).all(|y| keep(0, y) && keep(15, y)),
        "the black half is kept"
    );
    assert!(keep(20, 2) && keep(31, 10), "gray 127 is kept");
    assert!(!keep(20, 20) && !keep(31, 31), "gray 128 is not");
    assert_eq!(
        prepared.crop_rgb[(20 * 32 + 20) * 3..][..3],
        [128, 128, 128]
    );
    assert_eq!(prepared.crop_rgb[(2 * 32 + 20) * 3..][..3], [200, 100, 50]);
}

#[test]
fn without_a_mask_the_alpha_decides_else_everything_is_kept() {
    // Opaque in the top half only.
    let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_fn(16, 16, |_, y| {
        Rgba([10, 20, 30, if y < 8 { 255 } else { 0 }])
    }));
    let bytes = encode(&rgba, ImageFormat::Png);
    let prepared =
        prepare_condition_files(&bytes, "cut-out.png", None, SquareBox::new(0, 0, 16)).unwrap();
    assert_eq!(
        prepared.keep_latent,
        GridMask::from_cells(2, 2, vec![true, true, false, false]).unwrap()
    );
    assert_eq!(prepared.crop_rgb[..3], [10, 20, 30]);
    assert_eq!(prepared.crop_rgb[(15 * 16) * 3..][..3], [128, 128, 128]);
    // An explicit mask wins over the alpha.
    let mask = gray_png(16, 16, |_, _| 0);
    let prepared =
        prepare_condition_files(&bytes, "cut-out.png", Some(&mask), SquareBox::new(0, 0, 16))
            .unwrap();
    assert!(prepared.keep_pixels.iter().all(|&k| k));
    assert_eq!(
        prepared.crop_rgb[(15 * 16) * 3..][..3],
        [128, 128, 128],
        "flattened alpha"
    );
}

#[test]
fn bad_masks_and_boxes_are_named_errors() {
    let image = png_of(48, 32, |_, _| [1, 2, 3]);
    let square_mask = gray_png(32, 32, |_, _| 0);
    match prepare_condition_files(
        &image,
        "wide.png",
        Some(&square_mask),
        SquareBox::new(0, 0, 32),
    ) {
        Err(e @ ConditionError::MaskShape { .. }) => {
            assert!(e.to_string().contains("wide.png"), "{e}")
        }
        other => panic!("mask of other proportions: {other:?}"),
    }
    // The same proportions at another size are fine.
    let small_mask = gray_png(24, 16, |_, _| 0);
    assert!(prepare_condition_files(
        &image,
        "wide.png",
        Some(&small_mask),
        SquareBox::new(0, 0, 32)
    )
    .is_ok());
    // A damaged mask names the mask.
    match prepare_condition_files(
        &image,
        "wide.png",
        Some(&[1, 2, 3]),
        SquareBox::new(0, 0, 32),
    ) {
        Err(e @ ConditionError::Decode(DecodeError::UnknownFormat { .. })) => {
            assert!(e.to_string().starts_with("mask of wide.png"), "{e}")
        }
        other => panic!("damaged mask: {other:?}"),
    }
    for (placement, what) in [
        (SquareBox::new(0, 0, 20), "side 20"),
        (SquareBox::new(4, 0, 16), "x 4"),
        (SquareBox::new(0, 0, 0), "empty"),
    ] {
        assert!(
            matches!(
                prepare_condition_files(&image, "wide.png", None, placement),
                Err(ConditionError::Box { .. })
            ),
            "{what}"
        );
    }
}

#[test]
fn the_canvas_pastes_kept_pixels_in_order_and_unites_the_latent_masks() {
    let solid = |colour: [u8; 3]| png_of(16, 16, move |_, _| colour);
    let red = prepare_condition_files(&solid([255, 0, 0]), "red", None, SquareBox::new(0, 0, 16))
        .unwrap();
    // Blue at (8, 0), keeping only its right half: its discarded left half lies on red.
    let right_half = gray_png(16, 16, |x, _| if x >= 8 { 0 } else { 255 });
    let blue = prepare_condition_files(
        &solid([0, 0, 255]),
        "blue",
        Some(&right_half),
        SquareBox::new(8, 0, 16),
    )
    .unwrap();
    // Green at (0, 8), all kept: its top half lies on red.
    let green =
        prepare_condition_files(&solid([0, 255, 0]), "green", None, SquareBox::new(0, 8, 16))
            .unwrap();
    let canvas = compose_canvas(64, &[red, blue, green]).unwrap();
    assert_eq!((canvas.side, canvas.rgb.len()), (64, 64 * 64 * 3));
    let at = |x: usize, y: usize| &canvas.rgb[(y * 64 + x) * 3..(y * 64 + x) * 3 + 3];
    assert_eq!(at(3, 3), [255, 0, 0], "red alone");
    assert_eq!(
        at(12, 3),
        [255, 0, 0],
        "under blue's discarded half red stays"
    );
    assert_eq!(at(20, 3), [0, 0, 255], "blue's kept half");
    assert_eq!(at(3, 12), [0, 255, 0], "green is later than red and wins");
    assert_eq!(at(20, 12), [0, 0, 255], "blue where green does not reach");
    assert_eq!(at(3, 20), [0, 255, 0]);
    assert_eq!(at(40, 40), [128, 128, 128], "the canvas gray");
    // m_full: red (0..2, 0..2), blue's right half (0..2, 2), green (1..3, 0..2).
    let mut want = GridMask::new(8, 8);
    for (r, c) in [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
        (0, 2),
        (1, 2),
        (2, 0),
        (2, 1),
    ] {
        want.set(r, c, true);
    }
    assert_eq!(canvas.keep_latent, want);

    // One condition at COW's default place on the default canvas.
    let face = prepare_condition_files(
        &png_of(256, 256, |x, y| [x as u8, y as u8, 0]),
        "face",
        None,
        SquareBox::new(128, 0, 256),
    )
    .unwrap();
    let canvas = compose_canvas(512, std::slice::from_ref(&face)).unwrap();
    assert_eq!(&canvas.rgb[(10 * 512 + 128 + 5) * 3..][..3], [5, 10, 0]);
    assert_eq!(canvas.keep_latent.count(), 32 * 32);
    assert!(
        canvas.keep_latent.get(0, 16)
            && canvas.keep_latent.get(31, 47)
            && !canvas.keep_latent.get(0, 15)
    );
}

#[test]
fn canvases_of_a_bad_size_or_with_boxes_off_them_are_refused() {
    let condition = prepare_condition_files(
        &png_of(64, 64, |_, _| [0; 3]),
        "c",
        None,
        SquareBox::new(0, 0, 64),
    )
    .unwrap();
    assert!(matches!(
        compose_canvas(100, &[]),
        Err(ConditionError::CanvasSize(100))
    ));
    assert!(matches!(
        compose_canvas(0, &[]),
        Err(ConditionError::CanvasSize(0))
    ));
    let mut off = condition.clone();
    off.placement = SquareBox::new(64, 0, 64);
    match compose_canvas(64, &[condition.clone(), off]) {
        Err(
            e @ ConditionError::Box {
                source: GeometryError::OffCanvas(..),
                ..
            },
        ) => {
            assert!(e.to_string().starts_with("condition 2"), "{e}")
        }
        other => panic!("box off the canvas: {other:?}"),
    }
    let mut inconsistent = condition;
    inconsistent.placement = SquareBox::new(0, 0, 32);
    assert!(matches!(
        compose_canvas(64, &[inconsistent]),
        Err(ConditionError::Inconsistent { .. })
    ));
}

#[test]
fn conditions_can_be_prepared_from_decoded_images() {
    let decoded = decode_image(&png_of(16, 16, |_, _| [9, 9, 9]), "p").unwrap();
    let mask = decode_mask(&gray_png(16, 16, |x, _| if x < 8 { 0 } else { 255 }), "m").unwrap();
    let prepared = prepare_condition(&decoded, Some(&mask), SquareBox::new(0, 0, 16), "p").unwrap();
    assert_eq!(
        prepared.keep_latent,
        GridMask::from_cells(2, 2, vec![true, false, true, false]).unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// PNG output and text chunks.

#[test]
fn png_text_round_trips_with_non_ascii_text() {
    let rgb: Vec<u8> = (0..5 * 3 * 3).map(|i| (i * 7) as u8).collect();
    let json = r#"{"prompt":"un chat roux — 猫, Ärger, 🐱","seed":42}"#;
    let png = encode_rgb_png_with_text(
        &rgb,
        5,
        3,
        &[("sow-studio:parameters", json), ("Software", "SOW Studio")],
    )
    .unwrap();
    assert_eq!(
        read_png_text(&png).unwrap(),
        vec![
            PngText {
                keyword: "sow-studio:parameters".into(),
                text: json.into()
            },
            PngText {
                keyword: "Software".into(),
                text: "SOW Studio".into()
            },
        ]
    );
    assert_eq!(
        find_png_text(&png, "sow-studio:parameters")
            .unwrap()
            .as_deref(),
        Some(json)
    );
    assert_eq!(find_png_text(&png, "missing").unwrap(), None);
    // The pixels are intact.
    let decoded = decode_image(&png, "out.png").unwrap();
    assert_eq!(decoded.rgb.pixels(), &rgb[..]);
    // Plain previews.
    assert_eq!(
        decode_image(&encode_rgb_png(&rgb, 5, 3).unwrap(), "p")
            .unwrap()
            .rgb
            .pixels(),
        &rgb[..]
    );
    let rgba: Vec<u8> = (0..2 * 2 * 4)
        .map(|i| if i % 4 == 3 { 255 } else { (i * 20) as u8 })
        .collect();
    let decoded = decode_image(&encode_rgba_png(&rgba, 2, 2).unwrap(), "p").unwrap();
    assert_eq!(decoded.rgb.pixel(1, 1), [240, 4, 24]);
    assert!(read_png_text(&encode_rgb_png(&rgb, 5, 3).unwrap())
        .unwrap()
        .is_empty());
}

#[test]
fn text_after_the_image_data_and_compressed_text_are_read() {
    use png::text_metadata::{ITXtChunk, ZTXtChunk};
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 1, 1);
    encoder.set_color(png::ColorType::Rgb);
    encoder
        .add_text_chunk("Title".into(), "Café".into())
        .unwrap();
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&[1, 2, 3]).unwrap();
    writer
        .write_text_chunk(&ZTXtChunk::new("Comment", "après l'image".repeat(50)))
        .unwrap();
    let mut compressed = ITXtChunk::new("Author", "作者");
    compressed.compressed = true;
    writer.write_text_chunk(&compressed).unwrap();
    writer.finish().unwrap();
    let text = read_png_text(&out).unwrap();
    assert_eq!(text.len(), 3);
    assert_eq!(
        text[0],
        PngText {
            keyword: "Title".into(),
            text: "Café".into()
        }
    );
    assert_eq!(text[1].text, "après l'image".repeat(50));
    assert_eq!(
        text[2],
        PngText {
            keyword: "Author".into(),
            text: "作者".into()
        }
    );
}

#[test]
fn png_writing_and_reading_errors_are_named() {
    let rgb = [0u8; 12];
    for bad in [
        "",
        " lead",
        "trail ",
        "two  spaces",
        "tab\there",
        "猫",
        &"k".repeat(80),
    ] {
        assert!(
            matches!(
                encode_rgb_png_with_text(&rgb, 2, 2, &[(bad, "x")]),
                Err(PngError::Keyword(_))
            ),
            "{bad:?}"
        );
    }
    assert!(encode_rgb_png_with_text(&rgb, 2, 2, &[(&"k".repeat(79), "x"), ("Ä ö", "")]).is_ok());
    assert!(matches!(
        encode_rgb_png(&rgb, 3, 2),
        Err(PngError::Size {
            expected: 18,
            actual: 12,
            ..
        })
    ));
    assert!(matches!(
        encode_rgb_png(&[], 0, 0),
        Err(PngError::Encode(_))
    ));
    assert_eq!(read_png_text(b"GIF89a"), Err(PngError::NotPng));
    let png = encode_rgb_png_with_text(&rgb, 2, 2, &[("k", "v")]).unwrap();
    assert!(matches!(
        read_png_text(&png[..png.len() - 20]),
        Err(PngError::Corrupt(_))
    ));
}
