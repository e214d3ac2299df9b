//! PSNR and SSIM against independent reference values computed in Python (numpy / scipy /
//! scikit-image) by `tests/fixtures/make_metrics_fixture.py`, whose header gives the conventions
//! (BasicSR's) and how to re-run it.

use restora_model::metrics::{psnr, ssim, MetricOptions};
use restora_model::Image;

#[derive(serde::Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    width: u32,
    height: u32,
    /// 8-bit codes, row-major RGB interleaved; the value is `k as f32 / 255.0`.
    a: Vec<u8>,
    b: Vec<u8>,
    expected: Vec<Expected>,
}

#[derive(serde::Deserialize)]
struct Expected {
    crop_border: u32,
    y_channel: bool,
    /// `None` for identical images (+∞, which JSON cannot hold).
    psnr: Option<f64>,
    ssim: f64,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/metrics.json")).expect("metrics.json parses")
}

fn image(width: u32, height: u32, codes: &[u8]) -> Image {
    let data = codes.iter().map(|&k| f32::from(k) / 255.0).collect();
    Image::new(width, height, data).expect("fixture image has the right size")
}

#[test]
fn fixture_covers_every_option() {
    let fixture = fixture();
    assert!(fixture.cases.len() >= 6);
    for case in &fixture.cases {
        let mut options: Vec<_> = case.expected.iter().map(|e| (e.crop_border, e.y_channel)).collect();
        options.sort_unstable();
        assert_eq!(options, [(0, false), (0, true), (4, false), (4, true)], "{}", case.name);
    }
}

#[test]
fn psnr_matches_python_reference() {
    for case in fixture().cases {
        let a = image(case.width, case.height, &case.a);
        let b = image(case.width, case.height, &case.b);
        for e in &case.expected {
            let opts = MetricOptions::new().with_crop_border(e.crop_border).with_y_channel(e.y_channel);
            let got = psnr(&a, &b, &opts).unwrap();
            let got_reversed = psnr(&b, &a, &opts).unwrap();
            match e.psnr {
                None => assert_eq!(got, f64::INFINITY, "{} {opts:?}", case.name),
                Some(want) => {
                    let rel = (got - want).abs() / want.abs();
                    assert!(rel < 1e-6, "{} {opts:?}: PSNR {got} vs Python {want}", case.name);
                }
            }
            assert_eq!(got, got_reversed, "{} {opts:?}: PSNR not symmetric", case.name);
        }
    }
}

#[test]
fn ssim_matches_python_reference() {
    for case in fixture().cases {
        let a = image(case.width, case.height, &case.a);
        let b = image(case.width, case.height, &case.b);
        for e in &case.expected {
            let opts = MetricOptions::new().with_crop_border(e.crop_border).with_y_channel(e.y_channel);
            let got = ssim(&a, &b, &opts).unwrap();
            assert!(
                (got - e.ssim).abs() <= 1e-5 * e.ssim.abs(),
                "{} {opts:?}: SSIM {got} vs Python {}",
                case.name,
                e.ssim
            );
        }
    }
}
