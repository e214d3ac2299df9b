//! End-to-end tests of the `train-native` binary on small images, including every bad input the
//! CLI must refuse with a clear message, a non-zero exit and no partial output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::backend::NdArray;
use restora_model::weights::{self, StoredPrecision, WeightFile};
use restora_model::{BitDepth, Image, Preset, RestormerConfig};
use tempfile::TempDir;

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_train-native")).args(args).output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn gradient(w: u32, h: u32) -> Image {
    Image::from_fn(w, h, |x, y| [x as f32 / w as f32, y as f32 / h as f32, ((x + y) % 7) as f32 / 7.0])
}

fn write_png(path: &Path, image: &Image) {
    std::fs::write(path, image.encode_png(BitDepth::Eight).unwrap()).unwrap();
}

/// Random tiny mask-aware weights: enough to exercise the whole path quickly.
fn tiny_weights(dir: &Path) -> PathBuf {
    let config = RestormerConfig::preset(Preset::Tiny).with_mask_aware(true);
    let model = config.init::<NdArray<f32>>(&Default::default());
    let path = dir.join("tiny.safetensors");
    std::fs::write(&path, weights::save(&model, &config, StoredPrecision::F32).unwrap()).unwrap();
    path
}

/// The folder holds only what the test put there and the expected outputs: no temp files.
fn assert_no_leftovers(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "leftover temporary file {name}");
    }
}

/// Runs a restore expected to fail; checks the message and that no output was left.
fn assert_restore_fails(dir: &Path, input: &Path, extra: &[&str], expected: &[&str]) {
    let weights = tiny_weights(dir);
    let output = dir.join("out.png");
    let mut args = vec!["restore", "--weights", s(&weights), "--input", s(input), "--output", s(&output)];
    args.extend_from_slice(extra);
    let result = cli(&args);
    let message = stderr(&result);
    assert!(!result.status.success(), "should fail: {args:?}");
    assert!(!message.contains("panicked"), "panicked: {message}");
    for word in expected {
        assert!(message.contains(word), "message should mention '{word}': {message}");
    }
    assert!(!output.exists(), "a failed run left {}", output.display());
    assert_no_leftovers(dir);
}

#[test]
fn restore_writes_an_image_of_the_same_size_in_8_and_16_bit() {
    let dir = TempDir::new().unwrap();
    let weights = tiny_weights(dir.path());
    let input = dir.path().join("in.png");
    write_png(&input, &gradient(21, 13));
    for depth in ["8", "16"] {
        let output = dir.path().join(format!("out{depth}.png"));
        let result = cli(&[
            "restore",
            "--weights",
            s(&weights),
            "--task",
            "denoise",
            "--input",
            s(&input),
            "--output",
            s(&output),
            "--bit-depth",
            depth,
        ]);
        assert!(result.status.success(), "{}", stderr(&result));
        let restored = Image::decode(&std::fs::read(&output).unwrap()).unwrap();
        assert_eq!((restored.width(), restored.height()), (21, 13));
    }
    assert_no_leftovers(dir.path());
}

#[test]
fn tiled_restore_of_a_folder_with_masks() {
    let dir = TempDir::new().unwrap();
    let weights = tiny_weights(dir.path());
    let (inputs, masks, outputs) = (dir.path().join("in"), dir.path().join("masks"), dir.path().join("out"));
    std::fs::create_dir_all(inputs.join("sub")).unwrap();
    std::fs::create_dir_all(masks.join("sub")).unwrap();
    write_png(&inputs.join("a.png"), &gradient(40, 24));
    write_png(&inputs.join("sub/b.png"), &gradient(17, 30));
    for (name, w, h) in [("a.png", 40, 24), ("sub/b.png", 17, 30)] {
        let mut mask = restora_model::Mask::zeros(w, h);
        mask.set(3, 4, 1.0);
        std::fs::write(masks.join(name), mask.encode_png().unwrap()).unwrap();
    }
    let result = cli(&[
        "restore",
        "--weights",
        s(&weights),
        "--task",
        "inpaint",
        "--input",
        s(&inputs),
        "--mask",
        s(&masks),
        "--output",
        s(&outputs),
        "--tile",
        "16",
        "--overlap",
        "8",
    ]);
    assert!(result.status.success(), "{}", stderr(&result));
    assert!(outputs.join("a.png").exists() && outputs.join("sub/b.png").exists());
}

#[test]
fn degrade_is_reproducible_for_every_kind() {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("clean.png");
    write_png(&input, &gradient(32, 24));
    for kind in
        ["gaussian-noise", "poisson-noise", "salt-and-pepper", "gaussian-blur", "motion-blur", "aliasing", "scratches"]
    {
        let run = |seed: &str, name: &str| {
            let output = dir.path().join(name);
            let result =
                cli(&["degrade", "--kind", kind, "--seed", seed, "--input", s(&input), "--output", s(&output)]);
            assert!(result.status.success(), "{kind}: {}", stderr(&result));
            std::fs::read(output).unwrap()
        };
        let (a, b) = (run("7", "a.png"), run("7", "b.png"));
        assert_eq!(a, b, "{kind}: same seed, different bytes");
        assert_ne!(a, std::fs::read(&input).unwrap(), "{kind} changed nothing");
    }
    let mask = dir.path().join("mask.png");
    let output = dir.path().join("scratched.png");
    let result =
        cli(&["degrade", "--kind", "scratches", "--input", s(&input), "--output", s(&output), "--mask-out", s(&mask)]);
    assert!(result.status.success(), "{}", stderr(&result));
    assert!(restora_model::Mask::decode(&std::fs::read(mask).unwrap()).unwrap().coverage() > 0.0);
}

#[test]
fn degrade_refuses_out_of_range_parameters() {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("clean.png");
    write_png(&input, &gradient(16, 16));
    let output = dir.path().join("out.png");
    let result =
        cli(&["degrade", "--kind", "gaussian-noise", "--sigma", "90", "--input", s(&input), "--output", s(&output)]);
    assert!(!result.status.success());
    assert!(stderr(&result).contains("sigma"), "{}", stderr(&result));
    assert!(!output.exists());
}

#[test]
fn grey_alpha_and_16_bit_images_are_accepted() {
    let dir = TempDir::new().unwrap();
    let weights = tiny_weights(dir.path());
    let grey = image::GrayImage::from_fn(12, 9, |x, _| image::Luma([x as u8 * 20]));
    let rgba = image::RgbaImage::from_fn(12, 9, |x, y| image::Rgba([x as u8 * 20, y as u8 * 20, 99, 128]));
    let deep = image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(12, 9, |x, _| image::Rgb([x as u16 * 5000, 3, 60000]));
    let paths = [dir.path().join("grey.png"), dir.path().join("rgba.png"), dir.path().join("deep.png")];
    grey.save(&paths[0]).unwrap();
    rgba.save(&paths[1]).unwrap();
    deep.save(&paths[2]).unwrap();
    for path in &paths {
        let output = dir.path().join("restored.png");
        let result = cli(&["restore", "--weights", s(&weights), "--input", s(path), "--output", s(&output)]);
        assert!(result.status.success(), "{}: {}", path.display(), stderr(&result));
    }
}

#[test]
fn cmyk_jpeg_is_converted_or_refused_clearly() {
    let dir = TempDir::new().unwrap();
    let weights = tiny_weights(dir.path());
    let output = dir.path().join("out.png");
    let result =
        cli(&["restore", "--weights", s(&weights), "--input", s(&fixture("cmyk.jpg")), "--output", s(&output)]);
    let message = stderr(&result);
    assert!(!message.contains("panicked"), "{message}");
    if result.status.success() {
        let restored = Image::decode(&std::fs::read(&output).unwrap()).unwrap();
        assert_eq!((restored.width(), restored.height()), (24, 16));
    } else {
        assert!(message.contains("cmyk.jpg"), "{message}");
        assert!(!output.exists());
    }
}

#[test]
fn corrupt_truncated_and_empty_files_are_refused() {
    let dir = TempDir::new().unwrap();
    let corrupt = dir.path().join("corrupt.png");
    std::fs::write(&corrupt, b"this is not an image at all, just text").unwrap();
    assert_restore_fails(dir.path(), &corrupt, &[], &["corrupt.png", "not a recognised image format"]);

    let truncated = dir.path().join("truncated.png");
    let png = gradient(64, 64).encode_png(BitDepth::Eight).unwrap();
    std::fs::write(&truncated, &png[..png.len() / 2]).unwrap();
    assert_restore_fails(dir.path(), &truncated, &[], &["truncated.png", "decode"]);

    let empty = dir.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    assert_restore_fails(dir.path(), &empty, &[], &["empty.png", "empty"]);
}

/// A PNG whose header claims a huge size: refused from the header, before any allocation.
#[test]
fn huge_dimensions_are_refused() {
    let dir = TempDir::new().unwrap();
    let huge = dir.path().join("huge.png");
    std::fs::write(&huge, png_header_only(100_000, 100_000)).unwrap();
    assert_restore_fails(dir.path(), &huge, &[], &["huge.png", "too large", "100000×100000"]);
}

/// A panorama wider than 16,384 px (the old limit) restores, with automatic tiles.
#[test]
fn a_20000_px_wide_panorama_restores() {
    let dir = TempDir::new().unwrap();
    let weights = tiny_weights(dir.path());
    let input = dir.path().join("panorama.png");
    write_png(&input, &gradient(20_000, 24));
    let output = dir.path().join("restored.png");
    let result =
        cli(&["restore", "--weights", s(&weights), "--task", "denoise", "--input", s(&input), "--output", s(&output)]);
    assert!(result.status.success(), "{}", stderr(&result));
    let restored = Image::decode(&std::fs::read(&output).unwrap()).unwrap();
    assert_eq!((restored.width(), restored.height()), (20_000, 24));
}

/// An explicit tile choice over the memory budget is refused before any work, with the fix.
#[test]
fn a_tile_over_the_memory_budget_is_refused_with_a_suggestion() {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("large.png");
    write_png(&input, &gradient(1500, 1000));
    assert_restore_fails(
        dir.path(),
        &input,
        &["--task", "denoise", "--tile", "whole", "--max-memory-mb", "512"],
        &["1500×1000", "--tile whole", "--max-memory-mb 512", "use --tile 512"],
    );
}

#[test]
fn zero_size_png_is_refused() {
    let dir = TempDir::new().unwrap();
    let zero = dir.path().join("zero.png");
    std::fs::write(&zero, png_header_only(0, 10)).unwrap();
    assert_restore_fails(dir.path(), &zero, &[], &["zero.png"]);
}

#[test]
fn mask_of_the_wrong_size_is_refused() {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("in.png");
    write_png(&input, &gradient(20, 12));
    let mask = dir.path().join("mask.png");
    std::fs::write(&mask, restora_model::Mask::zeros(12, 20).encode_png().unwrap()).unwrap();
    assert_restore_fails(dir.path(), &input, &["--task", "inpaint", "--mask", s(&mask)], &["12×20", "20×12"]);
    assert_restore_fails(dir.path(), &input, &["--task", "inpaint"], &["--mask"]);
}

#[test]
fn weights_of_the_wrong_shape_name_the_key_and_both_shapes() {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("in.png");
    write_png(&input, &gradient(16, 16));
    // Tiny weights whose metadata claims dim 16: the first tensor cannot fit.
    let mut file = WeightFile::from_safetensors(&std::fs::read(tiny_weights(dir.path())).unwrap()).unwrap();
    let config = RestormerConfig::preset(Preset::Tiny).with_mask_aware(true).with_dim(16);
    file.metadata.insert(weights::CONFIG_METADATA_KEY.into(), weights::config_json(&config));
    let wrong = dir.path().join("wrong.safetensors");
    std::fs::write(&wrong, file.to_safetensors(StoredPrecision::F32).unwrap()).unwrap();
    let output = dir.path().join("out.png");
    let result = cli(&["restore", "--weights", s(&wrong), "--input", s(&input), "--output", s(&output)]);
    let message = stderr(&result);
    assert!(!result.status.success());
    assert!(
        message.contains("patch_embed.proj.weight")
            && message.contains("[8, 4, 3, 3]")
            && message.contains("[16, 4, 3, 3]"),
        "{message}"
    );
    assert!(!output.exists());

    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not weights").unwrap();
    let result = cli(&["restore", "--weights", s(&garbage), "--input", s(&input), "--output", s(&output)]);
    assert!(!result.status.success() && stderr(&result).contains("safetensors"), "{}", stderr(&result));

    let result = cli(&[
        "restore",
        "--weights",
        s(&dir.path().join("nope.safetensors")),
        "--input",
        s(&input),
        "--output",
        s(&output),
    ]);
    assert!(!result.status.success() && stderr(&result).contains("no weights at"), "{}", stderr(&result));
}

#[test]
fn unknown_task_and_bad_flags_are_refused() {
    let result = cli(&["restore", "--task", "sharpen", "--input", "a.png", "--output", "b.png"]);
    assert!(!result.status.success());
    let message = stderr(&result);
    assert!(message.contains("sharpen") && message.contains("denoise"), "{message}");
    let result = cli(&["restore", "--tile", "lots", "--input", "a.png", "--output", "b.png"]);
    assert!(!result.status.success() && stderr(&result).contains("lots"));
}

#[test]
fn an_input_is_never_overwritten() {
    let dir = TempDir::new().unwrap();
    let weights = tiny_weights(dir.path());
    let input = dir.path().join("photo.png");
    write_png(&input, &gradient(16, 16));
    let before = std::fs::read(&input).unwrap();
    let result = cli(&["restore", "--weights", s(&weights), "--input", s(&input), "--output", s(&input)]);
    assert!(!result.status.success() && stderr(&result).contains("overwrite"), "{}", stderr(&result));
    assert_eq!(std::fs::read(&input).unwrap(), before);
}

#[test]
fn eval_writes_markdown_and_json_reports_and_error_maps() {
    let dir = TempDir::new().unwrap();
    let weights = tiny_weights(dir.path());
    let data = dir.path().join("clean");
    std::fs::create_dir_all(&data).unwrap();
    write_png(&data.join("one.png"), &gradient(32, 32));
    write_png(&data.join("two.png"), &gradient(40, 32));
    let maps = dir.path().join("maps");
    for report in ["report.md", "report.json"] {
        let path = dir.path().join(report);
        let result = cli(&[
            "eval",
            "--weights",
            s(&weights),
            "--data",
            s(&data),
            "--tasks",
            "denoise,inpaint",
            "--report",
            s(&path),
            "--error-maps",
            s(&maps),
        ]);
        assert!(result.status.success(), "{}", stderr(&result));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("gaussian_noise") && text.contains("scratches"), "{text}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4); // three noises and scratches
    assert!(rows.iter().all(|r| r["images"] == 2 && r["input"]["psnr"].as_f64().unwrap() > 5.0));
    assert!(maps.join("one_scratches.png").exists());
}

#[test]
fn info_reports_the_official_parameter_count() {
    let result = cli(&["info", "--preset", "base"]);
    let text = String::from_utf8_lossy(&result.stdout);
    assert!(result.status.success() && text.contains("26,126,644"), "{text}");
    let result = cli(&["info", "--preset", "small", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(json["parameters"], 3_813_230);
}

#[test]
fn official_pth_converts_to_the_same_safetensors_and_back() {
    let dir = TempDir::new().unwrap();
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/restormer/tiny-biasfree");
    let converted = dir.path().join("converted.safetensors");
    let result = cli(&["convert", s(&shared.join("weights.pth")), s(&converted)]);
    assert!(result.status.success(), "{}", stderr(&result));
    let ours = WeightFile::from_safetensors(&std::fs::read(&converted).unwrap()).unwrap();
    let reference = WeightFile::from_safetensors(&std::fs::read(shared.join("weights.safetensors")).unwrap()).unwrap();
    let sorted = |f: &WeightFile| {
        let mut t = f.tensors.clone();
        t.sort_by(|a, b| a.key.cmp(&b.key));
        t
    };
    assert_eq!(sorted(&ours), sorted(&reference));
    assert_eq!(ours.tensors[0].key, "patch_embed.proj.weight");

    let back = dir.path().join("back.pth");
    let result = cli(&["convert", s(&converted), s(&back)]);
    assert!(result.status.success(), "{}", stderr(&result));
    // Read our .pth back through the same import path.
    let again = dir.path().join("again.safetensors");
    let result = cli(&["convert", s(&back), s(&again)]);
    assert!(result.status.success(), "{}", stderr(&result));
    let reread = WeightFile::from_safetensors(&std::fs::read(&again).unwrap()).unwrap();
    assert_eq!(sorted(&reread), sorted(&reference));
}

/// The 8-byte signature and an IHDR chunk (with its CRC) claiming `width × height`, no pixels.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    // A small IDAT so decoders get past the header; the pixels themselves are missing.
    let idat = b"IDAT\x78\x9c\x03\x00".to_vec();
    png.extend_from_slice(&4u32.to_be_bytes());
    png.extend_from_slice(&idat);
    png.extend_from_slice(&crc32(&idat).to_be_bytes());
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn figures_draw_one_picture_table_per_degradation_with_its_scores() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("val");
    std::fs::create_dir(&data).unwrap();
    write_png(&data.join("a.png"), &gradient(40, 32));
    write_png(&data.join("b.png"), &gradient(48, 48));
    let weights = tiny_weights(dir.path());
    let out = dir.path().join("figures");
    let model = format!("random={}", s(&weights));
    let args = ["figures", "--model", &model, "--model", &model, "--data", s(&data), "--out", s(&out)];
    let result = cli(&[&args[..], &["--images", "2", "--crop", "32", "--tasks", "deblur,inpaint"]].concat());
    assert!(result.status.success(), "{}", stderr(&result));

    // Deblurring is evaluated on two blurs, inpainting on scratches: three tables.
    let mut written: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    written.sort();
    assert_eq!(written, ["deblur-gaussian_blur.png", "deblur-motion_blur.png", "figures.md", "inpaint-scratches.png"]);
    // Input, two models and the ground truth side by side; per image a picture row and a map row.
    let table = image::open(out.join("inpaint-scratches.png")).unwrap();
    assert!(table.width() > 4 * 32 && table.height() > 4 * 32, "{}×{}", table.width(), table.height());
    let report = std::fs::read_to_string(out.join("figures.md")).unwrap();
    assert!(
        report.contains("## inpaint: scratches") && report.contains("| image | degraded input | random | random |")
    );
    assert_eq!(report.matches("| **mean** |").count(), 3, "{report}");
    // Both columns of the same model score the same.
    let row = report.lines().find(|l| l.starts_with("| a |")).unwrap();
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells[3], cells[4], "{row}");

    // Refused clearly: no model, a malformed one, and writing the figures into the data folder.
    let no_model = cli(&["figures", "--data", s(&data), "--out", s(&out)]);
    assert!(!no_model.status.success() && stderr(&no_model).contains("--model"));
    let malformed = cli(&["figures", "--model", s(&weights), "--data", s(&data), "--out", s(&out)]);
    assert!(stderr(&malformed).contains("NAME=WEIGHTS"), "{}", stderr(&malformed));
    let into_data = cli(&["figures", "--model", &model, "--data", s(&data), "--out", s(&data)]);
    assert!(stderr(&into_data).contains("data folder"), "{}", stderr(&into_data));
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 2, "nothing written next to the inputs");
    assert_no_leftovers(&out);
}

#[test]
fn score_pairs_folders_by_name_and_reports_psnr_ssim_lpips() {
    let dir = TempDir::new().unwrap();
    let (reference, restored) = (dir.path().join("reference"), dir.path().join("restored"));
    for folder in [&reference, &restored] {
        std::fs::create_dir_all(folder.join("sub")).unwrap();
    }
    let grey = |level: f32| Image::from_fn(32, 24, move |_, _| [level; 3]);
    write_png(&reference.join("same.png"), &gradient(32, 32));
    write_png(&restored.join("same.png"), &gradient(32, 32));
    // 51 grey levels apart everywhere: MSE 0.2², PSNR 10·log10(1 / 0.04) = 13.979 dB.
    write_png(&reference.join("sub/offset.png"), &grey(100.0 / 255.0));
    write_png(&restored.join("sub/offset.png"), &grey(151.0 / 255.0));
    write_png(&reference.join("unrestored.png"), &gradient(8, 8));
    let lpips = Path::new(env!("CARGO_MANIFEST_DIR")).join("../static/weights/lpips/alex_shift_tolerant.safetensors");
    let report = dir.path().join("scores.json");
    let score = |extra: &[&str]| {
        let mut args = vec!["score", "--reference", s(&reference), "--restored", s(&restored)];
        args.extend_from_slice(extra);
        cli(&args)
    };
    let result = score(&["--lpips", s(&lpips), "--report", s(&report)]);
    assert!(result.status.success(), "{}", stderr(&result));
    assert!(stderr(&result).contains("1 reference image(s) have no restored image"), "{}", stderr(&result));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let images = json["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(json["unmatched_references"], 1);
    let by_name = |name: &str| images.iter().find(|i| i["image"].as_str().unwrap().ends_with(name)).unwrap();
    assert_eq!(by_name("same.png")["psnr"], 100.0);
    assert_eq!(by_name("same.png")["ssim"], 1.0);
    assert_eq!(by_name("same.png")["lpips"], 0.0);
    assert!((by_name("offset.png")["psnr"].as_f64().unwrap() - 13.979).abs() < 0.01, "{json}");
    assert!(by_name("offset.png")["lpips"].as_f64().unwrap() > 0.0, "{json}");
    let mean_psnr = json["mean"]["psnr"].as_f64().unwrap();
    assert!((mean_psnr - (100.0 + 13.979) / 2.0).abs() < 0.01, "{json}");

    // Refused with the problem named: a restored image with no reference, sizes that differ,
    // a file against a folder, and a report format it does not write.
    write_png(&restored.join("stray.png"), &gradient(8, 8));
    let result = score(&[]);
    assert!(!result.status.success() && stderr(&result).contains("stray.png"), "{}", stderr(&result));
    std::fs::remove_file(restored.join("stray.png")).unwrap();
    write_png(&restored.join("same.png"), &gradient(32, 24));
    let result = score(&[]);
    assert!(!result.status.success() && stderr(&result).contains("same.png"), "{}", stderr(&result));
    let result = cli(&["score", "--reference", s(&reference.join("same.png")), "--restored", s(&restored)]);
    assert!(!result.status.success() && stderr(&result).contains("two files or two folders"), "{}", stderr(&result));
    let csv = dir.path().join("x.csv");
    let result = score(&["--report", s(&csv)]);
    assert!(!result.status.success() && stderr(&result).contains(".md or .json"), "{}", stderr(&result));
    assert!(!result.status.success() && !stderr(&result).contains("panicked"), "{}", stderr(&result));
}
