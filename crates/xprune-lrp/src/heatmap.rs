//! Heatmaps: the relevance of an image input rendered with a diverging blue-white-red colour
//! map, symmetric around zero (white), and written as PNG.

use crate::error::{LrpError, Result};
use burn::tensor::Tensor;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use xprune_graph::tensor_util::to_vec;

/// An 8-bit RGB image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major RGB triples.
    pub pixels: Vec<u8>,
}

/// The colour of a value in `[-1, 1]`: blue for -1, white for 0, red for 1 (clamped outside).
pub fn diverging_color(v: f32) -> [u8; 3] {
    let v = if v.is_finite() {
        v.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let fade = |t: f32| (255.0 * (1.0 - t.abs())).round() as u8;
    if v >= 0.0 {
        [255, fade(v), fade(v)]
    } else {
        [fade(v), fade(v), 255]
    }
}

/// Renders a `height x width` map (row-major), scaled by its largest absolute value so that
/// zero is white and the strongest value saturates. An all-zero map is white.
pub fn render_values(values: &[f32], height: usize, width: usize) -> Result<RgbImage> {
    if values.len() != height * width || values.is_empty() {
        return Err(LrpError::Heatmap {
            path: PathBuf::new(),
            message: format!("{} values for a {height} x {width} image", values.len()),
        });
    }
    let max = values
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = if max > 0.0 { 1.0 / max } else { 0.0 };
    let pixels = values
        .iter()
        .flat_map(|v| diverging_color(v * scale))
        .collect();
    Ok(RgbImage {
        width,
        height,
        pixels,
    })
}

/// Renders the relevance of sample `sample` of an image batch `[batch, C, H, W]`, summed over
/// channels.
pub fn render(relevance: &Tensor<4>, sample: usize) -> Result<RgbImage> {
    let [b, c, h, w] = relevance.dims();
    if sample >= b {
        return Err(LrpError::Heatmap {
            path: PathBuf::new(),
            message: format!("sample {sample} is out of range for a batch of {b}"),
        });
    }
    let one = to_vec(&relevance.clone().narrow(0, sample, 1));
    let mut map = vec![0.0f32; h * w];
    for ch in 0..c {
        for (i, m) in map.iter_mut().enumerate() {
            *m += one[ch * h * w + i];
        }
    }
    render_values(&map, h, w)
}

/// Writes an image as an 8-bit RGB PNG.
pub fn write_png(image: &RgbImage, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let err = |message: String| LrpError::Heatmap {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
    let mut encoder = png::Encoder::new(
        BufWriter::new(file),
        image.width as u32,
        image.height as u32,
    );
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| err(e.to_string()))?;
    writer
        .write_image_data(&image.pixels)
        .map_err(|e| err(e.to_string()))?;
    writer.finish().map_err(|e| err(e.to_string()))
}

/// Renders sample `sample` of an image relevance batch (see [`render`]) and writes it as PNG.
pub fn save_png(relevance: &Tensor<4>, sample: usize, path: impl AsRef<Path>) -> Result<()> {
    write_png(&render(relevance, sample)?, path)
}

/// Renders a `height x width` map (see [`render_values`]) and writes it as PNG.
pub fn save_png_values(
    values: &[f32],
    height: usize,
    width: usize,
    path: impl AsRef<Path>,
) -> Result<()> {
    write_png(&render_values(values, height, width)?, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_symmetric_around_white() {
        assert_eq!(diverging_color(0.0), [255, 255, 255]);
        assert_eq!(diverging_color(1.0), [255, 0, 0]);
        assert_eq!(diverging_color(-1.0), [0, 0, 255]);
        assert_eq!(diverging_color(0.5), [255, 128, 128]);
        assert_eq!(diverging_color(-0.5), [128, 128, 255]);
        assert_eq!(diverging_color(f32::NAN), [255, 255, 255]);
    }

    #[test]
    fn rendering_scales_by_the_largest_magnitude() {
        let img = render_values(&[0.0, 2.0, -4.0, -2.0], 2, 2).unwrap();
        assert_eq!(img.pixels[0..3], [255, 255, 255]);
        assert_eq!(img.pixels[3..6], [255, 128, 128]);
        assert_eq!(img.pixels[6..9], [0, 0, 255]);
        assert_eq!(img.pixels[9..12], [128, 128, 255]);
        assert!(render_values(&[1.0; 3], 2, 2).is_err());
        let white = render_values(&[0.0; 4], 2, 2).unwrap();
        assert!(white.pixels.iter().all(|p| *p == 255));
    }

    #[test]
    fn png_round_trip() {
        let dir = std::env::temp_dir().join(format!("xprune-lrp-heatmap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("map.png");
        save_png_values(&[1.0, -1.0, 0.5, 0.0, 0.25, -0.25], 2, 3, &path).unwrap();
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (3, 2));
        assert_eq!(&buf[..6], &[255, 0, 0, 0, 0, 255]);
        let err = save_png_values(&[1.0], 1, 1, dir.join("missing/dir/x.png")).unwrap_err();
        assert!(err.to_string().contains("missing/dir/x.png"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
