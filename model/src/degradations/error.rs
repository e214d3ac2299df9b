//! The one error type of the degradations: a parameter outside its documented range.

use std::ops::RangeInclusive;

/// What can go wrong building or applying a degradation. Every variant names the parameter, so a
/// bad options file or CLI flag can be fixed without reading the code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DegradationError {
    /// A parameter is outside its range (NaN is outside every range).
    #[error("{name} = {value} is out of range: expected {min} ..= {max} {unit}")]
    OutOfRange {
        /// Parameter name, as in the serialised form (e.g. `gaussian_noise.sigma`).
        name: &'static str,
        /// The value given.
        value: f32,
        /// Smallest allowed value.
        min: f32,
        /// Largest allowed value.
        max: f32,
        /// Unit of the three numbers above (e.g. `/255`, `px`).
        unit: &'static str,
    },
    /// The lower bound of a parameter pair exceeds the upper bound.
    #[error("{low_name} = {low} must not exceed {high_name} = {high}")]
    InvertedBounds {
        /// Name of the lower bound.
        low_name: &'static str,
        /// Its value.
        low: f32,
        /// Name of the upper bound.
        high_name: &'static str,
        /// Its value.
        high: f32,
    },
    /// Every weight of a [`super::Composition`] is zero: there is nothing to draw from.
    #[error("composition weights are all zero: at least one kind needs a positive weight")]
    ZeroWeights,
}

/// Checks `value ∈ range`, naming the parameter on failure.
pub(crate) fn check_range(
    name: &'static str,
    value: f32,
    range: RangeInclusive<f32>,
    unit: &'static str,
) -> Result<(), DegradationError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(DegradationError::OutOfRange { name, value, min: *range.start(), max: *range.end(), unit })
    }
}

/// Checks `low <= high` for a pair of bounds.
pub(crate) fn check_ordered(
    low_name: &'static str,
    low: f32,
    high_name: &'static str,
    high: f32,
) -> Result<(), DegradationError> {
    if low <= high {
        Ok(())
    } else {
        Err(DegradationError::InvertedBounds { low_name, low, high_name, high })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_out_of_range_values_are_refused_with_their_name() {
        assert!(check_range("x", 1.0, 0.0..=2.0, "px").is_ok());
        let err = check_range("x", 3.0, 0.0..=2.0, "px").unwrap_err();
        assert!(err.to_string().contains("x = 3"), "{err}");
        assert!(err.to_string().contains("0 ..= 2 px"), "{err}");
        assert!(check_range("x", f32::NAN, 0.0..=2.0, "px").is_err());
        assert!(check_ordered("lo", 2.0, "hi", 1.0).is_err());
        assert!(check_ordered("lo", 1.0, "hi", 1.0).is_ok());
    }
}
