//! Pixels onto `<canvas>` elements: the run's live preview and the mask brush.

use wasm_bindgen::{Clamped, JsCast};

/// Draws RGBA pixels, `w` × `h`, onto a canvas element of that size.
pub fn draw_rgba(canvas: &web_sys::HtmlCanvasElement, rgba: &[u8], w: usize, h: usize) {
    let Some(ctx) = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
    else {
        return;
    };
    if let Ok(data) =
        web_sys::ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), w as u32, h as u32)
    {
        let _ = ctx.put_image_data(&data, 0.0, 0.0);
    }
}

/// Resizes a canvas element to `w` × `h` and draws interleaved RGB onto it.
pub fn draw_rgb(canvas: &web_sys::HtmlCanvasElement, rgb: &[u8], w: usize, h: usize) {
    canvas.set_width(w as u32);
    canvas.set_height(h as u32);
    let mut rgba = Vec::with_capacity(w * h * 4);
    for px in rgb.chunks_exact(3) {
        rgba.extend_from_slice(&[px[0], px[1], px[2], 255]);
    }
    draw_rgba(canvas, &rgba, w, h);
}
