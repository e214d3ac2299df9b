//! Seeded randomness and the few transcendental functions the degradations need, written with
//! `+ - * /`, `sqrt` and rounding only.
//!
//! Why not `f64::exp` / `ln` / `sin` or `rand_distr`: those call the platform's libm (glibc on
//! Linux, a Rust port on wasm32), which may differ in the last bit, and a Poisson or Gaussian
//! sampler that branches on such a value can then diverge. IEEE basic operations and `sqrt` are
//! correctly rounded everywhere, so everything built on them here gives the same bytes for the
//! same seed on every platform, wasm32 included.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The generator every degradation draws from: ChaCha8, portable and seeded from a `u64`.
pub(crate) fn seeded(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Uniform in `[0, 1)`, 53 random bits.
pub(crate) fn uniform(rng: &mut impl RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Uniform in `[low, high)`.
pub(crate) fn uniform_in(rng: &mut impl RngCore, low: f64, high: f64) -> f64 {
    low + (high - low) * uniform(rng)
}

/// Uniform integer in `0..n` (`n > 0`), unbiased (Lemire's multiply-and-reject).
pub(crate) fn below(rng: &mut impl RngCore, n: u32) -> u32 {
    debug_assert!(n > 0);
    let n = n as u64;
    let threshold = (u32::MAX as u64 + 1 - n) % n;
    loop {
        let product = (rng.next_u32() as u64) * n;
        if (product & 0xFFFF_FFFF) >= threshold {
            return (product >> 32) as u32;
        }
    }
}

/// Standard normal deviates by Box–Muller, two per pair of uniforms.
pub(crate) struct Normals {
    spare: Option<f64>,
}

impl Normals {
    pub(crate) fn new() -> Self {
        Self { spare: None }
    }

    /// One `N(0, 1)` deviate.
    pub(crate) fn next(&mut self, rng: &mut impl RngCore) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        // u1 in (0, 1] so that ln(u1) is finite.
        let u1 = 1.0 - uniform(rng);
        let u2 = uniform(rng);
        let radius = (-2.0 * ln(u1)).sqrt();
        let (sin, cos) = sin_cos(std::f64::consts::TAU * u2);
        self.spare = Some(radius * sin);
        radius * cos
    }
}

/// A Poisson deviate of mean `lambda` (`0 <= lambda <= ~700`), by inversion: one uniform, then a
/// walk up the cumulative distribution. Exact, and cheap for the means used here (≤ 100).
pub(crate) fn poisson(rng: &mut impl RngCore, lambda: f64) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    let u = uniform(rng);
    let mut k = 0u32;
    let mut p = exp(-lambda);
    let mut cumulative = p;
    // The cap only guards against rounding leaving `cumulative` just under `u` forever.
    let cap = (lambda + 40.0 * lambda.sqrt() + 40.0) as u32;
    while cumulative <= u && k < cap {
        k += 1;
        p *= lambda / k as f64;
        cumulative += p;
    }
    k
}

// ln 2 split in two (fdlibm's constants): `k * LN2_HI` is exact for |k| < 2^11.
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);

/// `e^x`, relative error below 1e-15 over the normal range.
pub(crate) fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 709.0 {
        return f64::INFINITY;
    }
    if x < -745.0 {
        return 0.0;
    }
    let k = (x * std::f64::consts::LOG2_E).round();
    let r = (x - k * LN2_HI) - k * LN2_LO; // |r| <= ln2 / 2
                                           // Taylor series to r^16 (error below 1e-19 for |r| <= 0.35), Horner form.
    let mut sum = 1.0;
    let mut n = 16.0;
    while n >= 1.0 {
        sum = 1.0 + r * sum / n;
        n -= 1.0;
    }
    scale_by_power_of_two(sum, k as i32)
}

/// `x · 2^k`, exact for normal results.
fn scale_by_power_of_two(x: f64, k: i32) -> f64 {
    let mut x = x;
    let mut k = k;
    while k > 1023 {
        x *= f64::from_bits(((1023 + 1023) as u64) << 52);
        k -= 1023;
    }
    while k < -1022 {
        x *= f64::from_bits(1u64 << 52); // 2^-1022
        k += 1022;
    }
    x * f64::from_bits(((k + 1023) as u64) << 52)
}

/// Natural logarithm; `ln(0) = -inf`, negative or NaN input gives NaN.
pub(crate) fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    let mut x = x;
    let mut exponent = 0i32;
    if x < f64::MIN_POSITIVE {
        x *= f64::from_bits((1023u64 + 54) << 52); // 2^54: make subnormals normal
        exponent -= 54;
    }
    let bits = x.to_bits();
    exponent += ((bits >> 52) & 0x7FF) as i32 - 1023;
    // Mantissa in [1, 2), then folded into [sqrt(1/2), sqrt(2)).
    let mut m = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | (1023u64 << 52));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        exponent += 1;
    }
    // ln(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut series = 0.0;
    let mut n = 23.0;
    while n >= 1.0 {
        series = 1.0 / n + s2 * series;
        n -= 2.0;
    }
    let e = exponent as f64;
    e * LN2_HI + (e * LN2_LO + 2.0 * s * series)
}

/// `(sin x, cos x)`, absolute error below 1e-15 for `|x| <= 1e4` (arguments here stay within a
/// few turns).
pub(crate) fn sin_cos(x: f64) -> (f64, f64) {
    // pi / 2 split in two (fdlibm's), so the reduction stays accurate over a few turns.
    const PIO2_HI: f64 = f64::from_bits(0x3FF9_21FB_5440_0000);
    const PIO2_LO: f64 = f64::from_bits(0x3DD0_B461_1A62_6331);
    let k = (x * std::f64::consts::FRAC_2_PI).round();
    let r = (x - k * PIO2_HI) - k * PIO2_LO; // |r| <= pi / 4
    let r2 = r * r;
    // Taylor series: sin to r^17, cos to r^18 (error below 1e-17 for |r| <= pi/4).
    let mut sin = 1.0;
    let mut cos = 1.0;
    let mut n = 18.0;
    while n >= 2.0 {
        cos = 1.0 - r2 * cos / (n * (n - 1.0));
        sin = 1.0 - r2 * sin / ((n + 1.0) * n);
        n -= 2.0;
    }
    let sin = r * sin;
    match (k as i64).rem_euclid(4) {
        0 => (sin, cos),
        1 => (cos, -sin),
        2 => (-sin, -cos),
        _ => (-cos, sin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn math_matches_std_closely() {
        for i in -2000..2000 {
            let x = i as f64 * 0.0137;
            let (s, c) = sin_cos(x);
            assert!((s - x.sin()).abs() < 1e-14, "sin {x}");
            assert!((c - x.cos()).abs() < 1e-14, "cos {x}");
            let e = exp(x / 10.0);
            assert!(((e - (x / 10.0).exp()) / e).abs() < 1e-14, "exp {x}");
            if x > 0.0 {
                assert!((ln(x) - x.ln()).abs() < 1e-14, "ln {x}");
            }
        }
        assert!((exp(-100.0) / (-100.0f64).exp() - 1.0).abs() < 1e-14);
        assert!((ln(1e-300) - (1e-300f64).ln()).abs() < 1e-12);
        assert!((ln(5e-320) - (5e-320f64).ln()).abs() < 1e-9);
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn below_and_poisson_are_in_range() {
        let mut rng = seeded(1);
        let mut counts = [0u32; 3];
        for _ in 0..3000 {
            counts[below(&mut rng, 3) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (900..1100).contains(&c)), "{counts:?}");
        let n = 20_000;
        let mean = (0..n).map(|_| poisson(&mut rng, 4.0) as f64).sum::<f64>() / n as f64;
        assert!((mean - 4.0).abs() < 0.1, "{mean}");
        assert_eq!(poisson(&mut rng, 0.0), 0);
    }
}
