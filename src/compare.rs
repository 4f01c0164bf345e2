//! How outputs are compared with their references: the relative L2 error ‖a − b‖ / ‖b‖
//! (docs/method.md §2.10b), never element by element.

/// ‖actual − expected‖₂ / ‖expected‖₂, accumulated in f64. Returns infinity when the lengths
/// differ or any value is not finite, so a broken output can never pass a tolerance check;
/// when `expected` is all zeros, returns ‖actual‖₂ instead (the absolute error).
pub fn relative_l2(actual: &[f32], expected: &[f32]) -> f64 {
    if actual.len() != expected.len() || actual.iter().any(|v| !v.is_finite()) {
        return f64::INFINITY;
    }
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (&a, &e) in actual.iter().zip(expected) {
        diff += (a as f64 - e as f64).powi(2);
        norm += (e as f64).powi(2);
    }
    if norm == 0.0 {
        diff.sqrt()
    } else {
        (diff / norm).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::relative_l2;

    #[test]
    fn measures_relative_error_and_rejects_broken_outputs() {
        assert_eq!(relative_l2(&[3.0, 4.0], &[3.0, 4.0]), 0.0);
        assert!((relative_l2(&[3.0, 4.5], &[3.0, 4.0]) - 0.1).abs() < 1e-12);
        assert!(relative_l2(&[1.0], &[1.0, 2.0]).is_infinite());
        assert!(relative_l2(&[f32::NAN], &[1.0]).is_infinite());
    }
}
