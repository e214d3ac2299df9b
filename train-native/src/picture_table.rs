//! Picture tables as PNG bytes: images in a grid with a header over each column and a caption
//! under each picture, like the report's Tables 6–7 (input | models | ground truth, with error
//! maps under the restored images). Text is set in the same bundled font as the charts.

use std::io::Cursor;

use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use restora_model::Image;

use crate::plots::{drawing, font, FAMILY, MAX_SIDE};

/// Gap between pictures and around the table, in pixels.
const GAP: u32 = 6;
/// Height of the title and of the column headers.
const HEADER: u32 = 24;
/// Height of a caption under a picture.
const CAPTION: u32 = 18;

/// One picture with the line of text under it.
pub struct Cell {
    pub image: Image,
    pub caption: String,
}

/// A grid of pictures: `rows[r][c]` sits under `columns[c]`; `None` leaves the place blank.
pub struct PictureTable {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<Cell>>>,
}

impl PictureTable {
    /// Width of each column: its widest picture.
    fn column_widths(&self) -> Vec<u32> {
        (0..self.columns.len())
            .map(|c| {
                let widest = self.rows.iter().filter_map(|row| row.get(c)?.as_ref()).map(|cell| cell.image.width());
                widest.max().unwrap_or(0)
            })
            .collect()
    }

    /// Height of each row: its tallest picture.
    fn row_heights(&self) -> Vec<u32> {
        self.rows.iter().map(|row| row.iter().flatten().map(|cell| cell.image.height()).max().unwrap_or(0)).collect()
    }
}

/// Draws `table` and encodes it as PNG.
pub fn render_png(table: &PictureTable) -> Result<Vec<u8>> {
    if table.columns.is_empty() || table.rows.is_empty() {
        bail!("a picture table needs at least one column and one row");
    }
    if let Some(row) = table.rows.iter().find(|row| row.len() > table.columns.len()) {
        bail!("a row has {} pictures for {} columns", row.len(), table.columns.len());
    }
    let widths = table.column_widths();
    let heights = table.row_heights();
    let sum = |sizes: &[u32], extra: u32| -> u64 { sizes.iter().map(|&s| u64::from(s + extra)).sum::<u64>() };
    let width = u64::from(GAP) + sum(&widths, GAP);
    let height = u64::from(GAP + 2 * HEADER) + sum(&heights, CAPTION + GAP);
    if width > u64::from(MAX_SIDE) || height > u64::from(MAX_SIDE) {
        bail!("the picture table would be {width}×{height} pixels, over {MAX_SIDE}: use fewer or smaller images");
    }
    let (width, height) = (width as u32, height as u32);

    let mut pixels = vec![255u8; width as usize * height as usize * 3];
    // Pictures first, straight into the buffer; then the text over it with plotters.
    let mut y = GAP + 2 * HEADER;
    for (row, &row_height) in table.rows.iter().zip(&heights) {
        let mut x = GAP;
        for (cell, &column_width) in row.iter().zip(&widths) {
            if let Some(cell) = cell {
                paste(&mut pixels, width, &cell.image, x, y);
            }
            x += column_width + GAP;
        }
        y += row_height + CAPTION + GAP;
    }

    font()?;
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        let centred = |size: u32| TextStyle::from((FAMILY, size).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        let (title, header, caption) = (centred(18), centred(15), centred(12));
        root.draw_text(&table.title, &title, (width as i32 / 2, 3)).map_err(drawing)?;
        let mut x = GAP;
        for (name, &column_width) in table.columns.iter().zip(&widths) {
            let centre = (x + column_width / 2) as i32;
            root.draw_text(name, &header, (centre, (HEADER + 4) as i32)).map_err(drawing)?;
            x += column_width + GAP;
        }
        let mut y = GAP + 2 * HEADER;
        for (row, &row_height) in table.rows.iter().zip(&heights) {
            let mut x = GAP;
            for (cell, &column_width) in row.iter().zip(&widths) {
                if let Some(cell) = cell {
                    let at = ((x + column_width / 2) as i32, (y + cell.image.height() + 2) as i32);
                    root.draw_text(&cell.caption, &caption, at).map_err(drawing)?;
                }
                x += column_width + GAP;
            }
            y += row_height + CAPTION + GAP;
        }
        root.present().map_err(drawing)?;
    }
    let image = image::RgbImage::from_raw(width, height, pixels).context("picture table buffer of the wrong size")?;
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .context("cannot encode the picture table as PNG")?;
    Ok(png)
}

/// Copies `image` (values in `[0, 1]`) into the RGB buffer at `(x0, y0)`.
fn paste(pixels: &mut [u8], width: u32, image: &Image, x0: u32, y0: u32) {
    let row_bytes = image.width() as usize * 3;
    for (y, source) in image.data().chunks_exact(row_bytes).enumerate() {
        let start = ((y0 as usize + y) * width as usize + x0 as usize) * 3;
        for (out, value) in pixels[start..start + row_bytes].iter_mut().zip(source) {
            *out = (value.clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(width: u32, height: u32, rgb: [f32; 3]) -> Image {
        Image::from_fn(width, height, |_, _| rgb)
    }

    fn decode(png: &[u8]) -> image::RgbImage {
        image::load_from_memory(png).unwrap().to_rgb8()
    }

    #[test]
    fn pictures_land_in_their_cells_with_text_around_them() {
        let red = [1.0, 0.0, 0.0];
        let blue = [0.0, 0.0, 1.0];
        let table = PictureTable {
            title: "denoise".into(),
            columns: vec!["input".into(), "model".into()],
            rows: vec![
                vec![Some(Cell { image: flat(40, 30, red), caption: "20.00 dB".into() }), None],
                vec![None, Some(Cell { image: flat(50, 20, blue), caption: "30.00 dB".into() })],
            ],
        };
        let picture = decode(&render_png(&table).unwrap());
        // Columns 40 and 50 wide, rows 30 and 20 tall, with gaps, headers and captions.
        assert_eq!(picture.width(), GAP + 40 + GAP + 50 + GAP);
        assert_eq!(picture.height(), GAP + 2 * HEADER + 30 + CAPTION + GAP + 20 + CAPTION + GAP);
        let top = GAP + 2 * HEADER;
        assert_eq!(picture.get_pixel(GAP + 20, top + 15).0, [255, 0, 0]);
        let second_row = top + 30 + CAPTION + GAP;
        assert_eq!(picture.get_pixel(GAP + 40 + GAP + 25, second_row + 10).0, [0, 0, 255]);
        // The blank cell stays white; the title and captions put dark pixels on the canvas.
        assert_eq!(picture.get_pixel(GAP + 40 + GAP + 25, top + 15).0, [255, 255, 255]);
        let dark_in = |y0: u32, y1: u32| {
            (y0..y1).any(|y| (0..picture.width()).any(|x| picture.get_pixel(x, y).0.iter().all(|&v| v < 128)))
        };
        assert!(dark_in(0, HEADER), "no title");
        assert!(dark_in(top + 30, top + 30 + CAPTION), "no caption under the first picture");
    }

    #[test]
    fn empty_or_oversized_tables_are_refused() {
        let empty = PictureTable { title: "t".into(), columns: vec![], rows: vec![] };
        assert!(render_png(&empty).is_err());
        let wide = PictureTable {
            title: "t".into(),
            columns: vec!["a".into()],
            rows: vec![vec![Some(Cell { image: flat(MAX_SIDE, 1, [0.0; 3]), caption: String::new() })]],
        };
        assert!(render_png(&wide).unwrap_err().to_string().contains("over"));
        let ragged = PictureTable { title: "t".into(), columns: vec!["a".into()], rows: vec![vec![None, None]] };
        assert!(render_png(&ragged).unwrap_err().to_string().contains("columns"));
    }
}
