//! The toy experiment's results as a table (CSV) and a plot (SVG with labelled axes), the same
//! for `sow toy` and the app's toy lab.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::hook::ToyVariant;
use super::layout::Layout;

/// One measured image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToyRow {
    /// The experiment.
    pub variant: ToyVariant,
    /// The layout.
    pub layout: Layout,
    /// The merge state k.
    pub merge_state: usize,
    /// Mean |A − B| between the halves, [0, 1] units (0.5: apart; 0: blended).
    pub halves_difference: f32,
    /// Mean brightness of the upper-right quadrant, [0, 1].
    pub upper_right_brightness: f32,
}

/// The rows as CSV with a header.
pub fn to_csv(rows: &[ToyRow]) -> String {
    let mut csv =
        String::from("variant,layout,merge_state,halves_difference,upper_right_brightness\n");
    for r in rows {
        let _ = writeln!(
            csv,
            "{},{},{},{:.6},{:.6}",
            r.variant.name(),
            r.layout.name(),
            r.merge_state,
            r.halves_difference,
            r.upper_right_brightness
        );
    }
    csv
}

/// Line colours, readable on light and dark backgrounds.
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

/// A line plot of the halves' difference against the merge state, one line per (variant,
/// layout), with labelled axes, ticks and a legend. `steps` is N (the last merge state).
pub fn to_svg(rows: &[ToyRow], steps: usize) -> String {
    let (width, height) = (640.0, 400.0);
    let (left, right, top, bottom) = (70.0, 180.0, 40.0, 60.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let y_max = 0.5f64;
    let x = |k: f64| left + plot_w * k / steps.max(1) as f64;
    let y = |v: f64| top + plot_h * (1.0 - (v / y_max).clamp(0.0, 1.0));
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" aria-label="Blending of the two halves against the merge state" font-family="sans-serif" font-size="13">"#
    );
    let _ = write!(
        svg,
        r#"<title>Blending of the two halves against the merge state</title><rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="currentColor" stroke-opacity="0.5"/>"#
    );
    for k in 0..=steps {
        let px = x(k as f64);
        let _ = write!(
            svg,
            r#"<line x1="{px}" y1="{}" x2="{px}" y2="{}" stroke="currentColor"/><text x="{px}" y="{}" text-anchor="middle" fill="currentColor">{k}</text>"#,
            top + plot_h,
            top + plot_h + 5.0,
            top + plot_h + 20.0
        );
    }
    for tick in 0..=5 {
        let v = y_max * tick as f64 / 5.0;
        let py = y(v);
        let _ = write!(
            svg,
            r#"<line x1="{}" y1="{py}" x2="{left}" y2="{py}" stroke="currentColor"/><text x="{}" y="{}" text-anchor="end" fill="currentColor">{v:.1}</text>"#,
            left - 5.0,
            left - 8.0,
            py + 4.0
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" fill="currentColor">merge state k (0 = image, {steps} = noise)</text>"#,
        left + plot_w / 2.0,
        height - 15.0
    );
    let _ = write!(
        svg,
        r#"<text transform="translate(18 {}) rotate(-90)" text-anchor="middle" fill="currentColor">difference between the halves</text>"#,
        top + plot_h / 2.0
    );
    let mut series: Vec<(ToyVariant, Layout)> = Vec::new();
    for r in rows {
        if !series.contains(&(r.variant, r.layout)) {
            series.push((r.variant, r.layout));
        }
    }
    for (i, (variant, layout)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut points: Vec<(usize, f32)> = rows
            .iter()
            .filter(|r| r.variant == *variant && r.layout == *layout)
            .map(|r| (r.merge_state, r.halves_difference))
            .collect();
        points.sort_by_key(|p| p.0);
        let path: Vec<String> = points
            .iter()
            .map(|&(k, v)| format!("{:.1},{:.1}", x(k as f64), y(v as f64)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2.5"/>"#,
            path.join(" ")
        );
        for &(k, v) in &points {
            let _ = write!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{colour}"/>"#,
                x(k as f64),
                y(v as f64)
            );
        }
        let ly = top + 10.0 + 22.0 * i as f64;
        let lx = left + plot_w + 15.0;
        let _ = write!(
            svg,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="2.5"/><text x="{}" y="{}" fill="currentColor">{}, {}</text>"#,
            lx + 20.0,
            lx + 26.0,
            ly + 4.0,
            variant.name(),
            layout.name()
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_svg_carry_every_row_and_labelled_axes() {
        let rows: Vec<ToyRow> = (0..=3)
            .map(|k| ToyRow {
                variant: ToyVariant::Merge,
                layout: Layout::WhiteTop,
                merge_state: k,
                halves_difference: 0.5 - 0.1 * k as f32,
                upper_right_brightness: 1.0,
            })
            .collect();
        let csv = to_csv(&rows);
        assert_eq!(csv.lines().count(), 5);
        assert!(csv.contains("merge,white-top,2,0.300000,1.000000"));
        let svg = to_svg(&rows, 3);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("merge state k (0 = image, 3 = noise)"));
        assert!(svg.contains("difference between the halves"));
        assert_eq!(svg.matches("<circle").count(), 4);
    }
}
