//! Viridis colour map: perceptually uniform, readable in grey scale and by colour-blind readers.
//!
//! Piecewise-linear interpolation between 9 samples of matplotlib's viridis at t = 0, 1/8, ..., 1.

const SAMPLES: [[u8; 3]; 9] = [
    [0x44, 0x01, 0x54],
    [0x47, 0x2c, 0x7a],
    [0x3b, 0x51, 0x8b],
    [0x2c, 0x71, 0x8e],
    [0x21, 0x90, 0x8d],
    [0x27, 0xad, 0x81],
    [0x5c, 0xc8, 0x63],
    [0xaa, 0xdc, 0x32],
    [0xfd, 0xe7, 0x25],
];

/// Colour of `t` in [0, 1] (clamped; NaN maps to 0) as RGB bytes.
pub fn viridis(t: f64) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let h = t * (SAMPLES.len() - 1) as f64;
    let i = (h.floor() as usize).min(SAMPLES.len() - 2);
    let f = h - i as f64;
    let (a, b) = (SAMPLES[i], SAMPLES[i + 1]);
    let mix = |k: usize| (a[k] as f64 + f * (b[k] as f64 - a[k] as f64)).round() as u8;
    [mix(0), mix(1), mix(2)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_clamping() {
        assert_eq!(viridis(0.0), SAMPLES[0]);
        assert_eq!(viridis(1.0), SAMPLES[8]);
        assert_eq!(viridis(-3.0), SAMPLES[0]);
        assert_eq!(viridis(7.0), SAMPLES[8]);
        assert_eq!(viridis(f64::NAN), SAMPLES[0]);
        assert_eq!(viridis(0.5), SAMPLES[4]);
    }

    #[test]
    fn luminance_increases_monotonically() {
        // Viridis is designed so that perceived lightness rises with t; a swapped sample breaks it.
        let lum = |c: [u8; 3]| 0.2126 * c[0] as f64 + 0.7152 * c[1] as f64 + 0.0722 * c[2] as f64;
        let mut last = -1.0;
        for i in 0..=100 {
            let l = lum(viridis(i as f64 / 100.0));
            assert!(
                l >= last - 0.5,
                "luminance drops at t = {}",
                i as f64 / 100.0
            );
            last = l;
        }
    }
}
