//! Where things sit on the canvas: the condition's square box, free rectangles (the planner's
//! related region), and binary masks over a grid of cells (the latent grid, or any attention
//! layer's token grid). See docs/method.md §2.1–2.2.

use crate::model::sampling::nearest_source;

/// The latent grid is the pixel grid divided by this (the VAE downsamples 8×).
pub const LATENT_SCALE: usize = 8;

/// A box that cannot be used on a canvas.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    /// The side or an offset is not a multiple of 8 (latent cells must line up).
    #[error("the box {0} must have its corner and side on multiples of 8 pixels")]
    NotAligned(SquareBox),
    /// The box is empty.
    #[error("the box {0} has no area")]
    Empty(SquareBox),
    /// The box reaches outside the canvas.
    #[error("the box {0} does not fit on the {1}x{1} canvas")]
    OffCanvas(SquareBox, usize),
}

/// A square on the canvas, in pixels: top-left corner and side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SquareBox {
    /// Left edge.
    pub x: usize,
    /// Top edge.
    pub y: usize,
    /// Width and height.
    pub side: usize,
}

impl std::fmt::Display for SquareBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{}", self.x, self.y, self.side)
    }
}

impl std::str::FromStr for SquareBox {
    type Err = String;

    /// `x,y,side` in pixels.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let numbers: Result<Vec<usize>, _> = parts.iter().map(|p| p.parse::<usize>()).collect();
        match numbers.as_deref() {
            Ok([x, y, side]) => Ok(SquareBox {
                x: *x,
                y: *y,
                side: *side,
            }),
            _ => Err(format!(
                "{s:?} is not a box: expected x,y,side in pixels (e.g. 128,0,256)"
            )),
        }
    }
}

impl SquareBox {
    /// A box at (x, y) with this side.
    pub fn new(x: usize, y: usize, side: usize) -> Self {
        SquareBox { x, y, side }
    }

    /// Checks that the box is non-empty, on multiples of 8 and inside a `canvas`-sided canvas.
    pub fn validate(&self, canvas: usize) -> Result<(), GeometryError> {
        if self.side == 0 {
            return Err(GeometryError::Empty(*self));
        }
        if [self.x, self.y, self.side]
            .iter()
            .any(|v| v % LATENT_SCALE != 0)
        {
            return Err(GeometryError::NotAligned(*self));
        }
        if self.x + self.side > canvas || self.y + self.side > canvas {
            return Err(GeometryError::OffCanvas(*self, canvas));
        }
        Ok(())
    }

    /// The same box in latent cells (row, column, side), for an aligned box.
    pub fn latent(&self) -> (usize, usize, usize) {
        (
            self.y / LATENT_SCALE,
            self.x / LATENT_SCALE,
            self.side / LATENT_SCALE,
        )
    }

    /// The box as a rectangle.
    pub fn rect(&self) -> PixelRect {
        PixelRect {
            x: self.x as i64,
            y: self.y as i64,
            w: self.side as i64,
            h: self.side as i64,
        }
    }

    /// The centre in canvas-relative coordinates (x, y) in [0, 1].
    pub fn centre(&self, canvas: usize) -> (f64, f64) {
        let c = canvas as f64;
        (
            (self.x as f64 + self.side as f64 / 2.0) / c,
            (self.y as f64 + self.side as f64 / 2.0) / c,
        )
    }
}

/// A rectangle in canvas pixels, possibly reaching outside the canvas (before clipping).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PixelRect {
    /// Left edge.
    pub x: i64,
    /// Top edge.
    pub y: i64,
    /// Width.
    pub w: i64,
    /// Height.
    pub h: i64,
}

impl PixelRect {
    /// The part inside a `canvas`-sided canvas, or None when nothing is left.
    pub fn clip(&self, canvas: usize) -> Option<PixelRect> {
        let c = canvas as i64;
        let (x0, y0) = (self.x.clamp(0, c), self.y.clamp(0, c));
        let (x1, y1) = ((self.x + self.w).clamp(0, c), (self.y + self.h).clamp(0, c));
        (x1 > x0 && y1 > y0).then_some(PixelRect {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        })
    }
}

/// A binary mask over a grid of cells, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridMask {
    rows: usize,
    cols: usize,
    cells: Vec<bool>,
}

impl GridMask {
    /// An empty mask.
    pub fn new(rows: usize, cols: usize) -> Self {
        GridMask {
            rows,
            cols,
            cells: vec![false; rows * cols],
        }
    }

    /// A mask from row-major cells; None if the count is wrong.
    pub fn from_cells(rows: usize, cols: usize, cells: Vec<bool>) -> Option<Self> {
        (cells.len() == rows * cols).then_some(GridMask { rows, cols, cells })
    }

    /// The cells of a `grid`-sided grid over a `canvas`-sided canvas whose centres lie inside
    /// `rect` (for rectangles on multiples of the cell size, exactly the cells it covers).
    pub fn from_rect(rect: &PixelRect, canvas: usize, grid: usize) -> Self {
        let mut mask = GridMask::new(grid, grid);
        let cell = canvas as f64 / grid as f64;
        for r in 0..grid {
            for c in 0..grid {
                let (cx, cy) = ((c as f64 + 0.5) * cell, (r as f64 + 0.5) * cell);
                let inside = cx >= rect.x as f64
                    && cx < (rect.x + rect.w) as f64
                    && cy >= rect.y as f64
                    && cy < (rect.y + rect.h) as f64;
                mask.cells[r * grid + c] = inside;
            }
        }
        mask
    }

    /// Rows and columns.
    pub fn size(&self) -> [usize; 2] {
        [self.rows, self.cols]
    }

    /// One cell.
    pub fn get(&self, row: usize, col: usize) -> bool {
        self.cells[row * self.cols + col]
    }

    /// Sets one cell.
    pub fn set(&mut self, row: usize, col: usize, value: bool) {
        self.cells[row * self.cols + col] = value;
    }

    /// The cells, row-major.
    pub fn cells(&self) -> &[bool] {
        &self.cells
    }

    /// How many cells are set.
    pub fn count(&self) -> usize {
        self.cells.iter().filter(|&&c| c).count()
    }

    /// Whether no cell is set.
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Cells set in either mask (same size required).
    pub fn union(&self, other: &GridMask) -> GridMask {
        self.zip(other, |a, b| a || b)
    }

    /// Cells set here and not in `other` (same size required).
    pub fn minus(&self, other: &GridMask) -> GridMask {
        self.zip(other, |a, b| a && !b)
    }

    fn zip(&self, other: &GridMask, f: impl Fn(bool, bool) -> bool) -> GridMask {
        assert_eq!(self.size(), other.size(), "masks of different sizes");
        GridMask {
            rows: self.rows,
            cols: self.cols,
            cells: self
                .cells
                .iter()
                .zip(&other.cells)
                .map(|(&a, &b)| f(a, b))
                .collect(),
        }
    }

    /// Writes `other` into this mask with its top-left cell at (row, col): set cells of `other`
    /// set cells here (a paste that only adds; cells outside the grid are ignored).
    pub fn place(&mut self, other: &GridMask, row: usize, col: usize) {
        for r in 0..other.rows {
            for c in 0..other.cols {
                if other.get(r, c) && row + r < self.rows && col + c < self.cols {
                    self.set(row + r, col + c, true);
                }
            }
        }
    }

    /// Nearest-neighbour resampling to another grid, with PyTorch's `interpolate(mode =
    /// "nearest")` index rule (the rule masks follow into every attention layer).
    pub fn resample(&self, rows: usize, cols: usize) -> GridMask {
        let mut out = GridMask::new(rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                let value = self.get(
                    nearest_source(r, self.rows, rows),
                    nearest_source(c, self.cols, cols),
                );
                out.set(r, c, value);
            }
        }
        out
    }

    /// The cells as 0.0/1.0, row-major.
    pub fn to_f32(&self) -> Vec<f32> {
        self.cells.iter().map(|&c| c as u8 as f32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_validate_and_parse() {
        let b: SquareBox = "128,0,256".parse().unwrap();
        assert_eq!(b, SquareBox::new(128, 0, 256));
        assert!(b.validate(512).is_ok());
        assert_eq!(b.latent(), (0, 16, 32));
        assert!(matches!(
            SquareBox::new(300, 0, 256).validate(512),
            Err(GeometryError::NotAligned(_)) | Err(GeometryError::OffCanvas(..))
        ));
        assert!(matches!(
            SquareBox::new(320, 0, 256).validate(512),
            Err(GeometryError::OffCanvas(..))
        ));
        assert!(matches!(
            SquareBox::new(4, 0, 256).validate(512),
            Err(GeometryError::NotAligned(_))
        ));
        assert!("1,2".parse::<SquareBox>().is_err());
        assert_eq!(SquareBox::new(128, 0, 256).centre(512), (0.5, 0.25));
    }

    #[test]
    fn masks_from_rects_combine_and_resample() {
        let rect = PixelRect {
            x: -8,
            y: 16,
            w: 24,
            h: 600,
        };
        let clipped = rect.clip(64).unwrap();
        assert_eq!(
            (clipped.x, clipped.y, clipped.w, clipped.h),
            (0, 16, 16, 48)
        );
        let m = GridMask::from_rect(&clipped, 64, 8);
        assert_eq!(m.count(), 2 * 6);
        let mut other = GridMask::new(8, 8);
        other.set(2, 0, true);
        other.set(0, 7, true);
        assert_eq!(m.minus(&other).count(), 11);
        assert_eq!(m.union(&other).count(), 13);
        let up = m.resample(16, 16);
        assert_eq!(up.count(), 4 * m.count());
        let mut big = GridMask::new(4, 4);
        big.place(
            &GridMask::from_cells(2, 2, vec![true, false, true, true]).unwrap(),
            3,
            3,
        );
        assert_eq!(big.count(), 1);
        assert!(PixelRect {
            x: 70,
            y: 0,
            w: 5,
            h: 5
        }
        .clip(64)
        .is_none());
    }
}
