//! The toy experiment's two-tone images (docs/method.md §4.1): a white and a gray half in one of
//! four layouts, and the quadrants its attention variants act on.

use serde::{Deserialize, Serialize};

use crate::imaging::GridMask;

/// Where the white half sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// White on top, gray below (the paper's Fig. 4).
    WhiteTop,
    /// Gray on top, white below.
    GrayTop,
    /// White on the left, gray on the right.
    WhiteLeft,
    /// Gray on the left, white on the right.
    GrayLeft,
}

impl Layout {
    /// All four, in the order the COW project page shows them.
    pub const ALL: [Layout; 4] = [
        Layout::WhiteTop,
        Layout::GrayTop,
        Layout::WhiteLeft,
        Layout::GrayLeft,
    ];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Layout::WhiteTop => "white-top",
            Layout::GrayTop => "gray-top",
            Layout::WhiteLeft => "white-left",
            Layout::GrayLeft => "gray-left",
        }
    }

    /// The white half on a `side`-sided grid (true = white).
    pub fn white_mask(self, side: usize) -> GridMask {
        let half = side / 2;
        let cells = (0..side * side)
            .map(|p| {
                let (row, col) = (p / side, p % side);
                match self {
                    Layout::WhiteTop => row < half,
                    Layout::GrayTop => row >= half,
                    Layout::WhiteLeft => col < half,
                    Layout::GrayLeft => col >= half,
                }
            })
            .collect();
        GridMask::from_cells(side, side, cells).expect("side² cells")
    }
}

impl std::str::FromStr for Layout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Layout::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| {
                format!("unknown layout {s:?}: use white-top, gray-top, white-left or gray-left")
            })
    }
}

/// A quadrant of a square grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quadrant {
    /// Rows in the top half, columns in the right half.
    UpperRight,
    /// Rows in the bottom half, columns in the left half.
    LowerLeft,
}

impl Quadrant {
    /// The quadrant's cells on a `rows × cols` grid.
    pub fn mask(self, [rows, cols]: [usize; 2]) -> GridMask {
        let cells = (0..rows * cols)
            .map(|p| {
                let (top, right) = (p / cols < rows / 2, p % cols >= cols / 2);
                match self {
                    Quadrant::UpperRight => top && right,
                    Quadrant::LowerLeft => !top && !right,
                }
            })
            .collect();
        GridMask::from_cells(rows, cols, cells).expect("rows × cols cells")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_and_quadrants_cover_the_right_halves() {
        let top = Layout::WhiteTop.white_mask(4);
        assert!(top.get(1, 3) && !top.get(2, 0));
        assert_eq!(top.count(), 8);
        assert!(Layout::GrayLeft.white_mask(4).get(0, 3));
        let ur = Quadrant::UpperRight.mask([4, 4]);
        assert!(ur.get(0, 2) && ur.get(1, 3) && !ur.get(2, 3) && !ur.get(0, 1));
        assert_eq!(
            Quadrant::LowerLeft.mask([2, 2]).cells(),
            &[false, false, true, false]
        );
        assert_eq!("gray-top".parse::<Layout>(), Ok(Layout::GrayTop));
    }
}
