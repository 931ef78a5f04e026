//! `cargo xtask plot`: PNG plots of the side-by-side benchmark (`docs/benchmarks/peers.jsonl`)
//! into `docs/benchmarks/`: join time and idle bytes against the cluster size, and every
//! repetition's detection times. One panel per profile; the x axis doubles per step.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::results::{self, IMPLS, Line, Measure, Stats};

/// The TTF the plots' text is drawn with (Debian's fonts-dejavu-core).
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// One panel's size in pixels.
const PANEL: (u32, u32) = (640, 480);

/// rumour's colour, then memberlist's.
const COLOURS: [RGBColor; 2] = [RGBColor(200, 60, 30), RGBColor(30, 90, 200)];

/// Fails with the package to install when the font is missing.
pub fn check_font() -> Result<(), String> {
    if Path::new(FONT).is_file() {
        Ok(())
    } else {
        Err(format!(
            "the DejaVu font ({FONT} does not exist): install it with \
             `sudo apt-get install fonts-dejavu-core`"
        ))
    }
}

/// Reads the font and registers it as `sans-serif`, the family plotters draws with.
fn load_font() -> Result<(), String> {
    check_font()?;
    let bytes = fs::read(FONT).map_err(|e| format!("cannot read {FONT}: {e}"))?;
    register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(bytes.into_boxed_slice()),
    )
    .map_err(|_| format!("{FONT} is not a font plotters can read"))
}

/// What one plot shows.
#[derive(Clone, Copy)]
enum Kind {
    /// The median of `Measure` against N, with a bar from minimum to maximum.
    Median(Measure),
    /// Every repetition's detection times: all survivors (filled), first survivor (hollow).
    Detection,
}

/// The plots `plot_all` writes: file name, title, y-axis label and kind.
const PLOTS: [(&str, &str, &str, Kind); 3] = [
    (
        "peers-join.png",
        "join: every node sees every member alive",
        "seconds, log scale (median, bar: min to max)",
        Kind::Median(Measure::Join),
    ),
    (
        "peers-idle-bytes.png",
        "idle cluster: bytes sent",
        "bytes per node per second (median, bar: min to max)",
        Kind::Median(Measure::Bytes),
    ),
    (
        "peers-detect.png",
        "detect: a crashed node declared failed",
        "seconds (filled: all survivors, hollow: first)",
        Kind::Detection,
    ),
];

/// x position of a cluster size: log2, so each doubling is one step.
fn x_of(n: u64) -> f64 {
    (n as f64).log2()
}

/// Writes every plot of `lines` into `docs/benchmarks/`.
pub fn plot_all(root: &Path, lines: &[Line]) -> Result<(), String> {
    load_font()?;
    let groups = results::groups(lines);
    if groups.is_empty() {
        return Err("no benchmark lines to plot".to_string());
    }
    for (file, title, y_label, kind) in PLOTS {
        let path = root.join("docs/benchmarks").join(file);
        let (w, h) = (PANEL.0 * u32::try_from(groups.len()).unwrap_or(1), PANEL.1);
        let mut pixels = vec![0u8; (w * h * 3) as usize];
        draw(&mut pixels, (w, h), lines, &groups, title, y_label, kind)
            .map_err(|e| format!("{file}: {e}"))?;
        write_png(&path, &pixels, (w, h))?;
        eprintln!("==> wrote docs/benchmarks/{file}");
    }
    Ok(())
}

/// The chart of one panel, whatever its y axis.
type Chart<'a, 'b, Y> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, Y>>;

/// Draws one plot, a panel per profile, into an RGB buffer.
fn draw(
    pixels: &mut [u8],
    size: (u32, u32),
    lines: &[Line],
    groups: &[(String, Vec<u64>)],
    title: &str,
    y_label: &str,
    kind: Kind,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(pixels, size).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, groups.len()));
    for (panel, (profile, sizes)) in panels.iter().zip(groups) {
        let data = Panel {
            lines,
            profile,
            sizes,
            kind,
        };
        let (y_min, y_max) = data.y_extent();
        let x = x_of(*sizes.first().unwrap_or(&2)) - 0.5..x_of(*sizes.last().unwrap_or(&2)) + 0.5;
        let mut builder = ChartBuilder::on(panel);
        builder
            .caption(format!("{title} ({profile})"), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64);
        if data.log_y() {
            // Join times span milliseconds to the harness's timeouts: a log axis keeps both.
            // Headroom above the data for the failure marks and, above them, the legend.
            let y = (y_min / 2.0..y_max * 8.0).log_scale();
            let mut chart = builder.build_cartesian_2d(x, y)?;
            data.fill(&mut chart, y_label, y_max * 2.0)?;
        } else {
            let mut chart = builder.build_cartesian_2d(x, 0.0..y_max * 1.5)?;
            data.fill(&mut chart, y_label, y_max * 1.2)?;
        }
    }
    root.present()?;
    Ok(())
}

/// One panel's data: the lines of one profile at its sizes.
struct Panel<'a> {
    lines: &'a [Line],
    profile: &'a str,
    sizes: &'a [u64],
    kind: Kind,
}

impl Panel<'_> {
    fn measures(&self) -> &'static [Measure] {
        match self.kind {
            Kind::Median(Measure::Join) => &[Measure::Join],
            Kind::Median(Measure::Bytes) => &[Measure::Bytes],
            Kind::Median(_) => &[Measure::Cpu],
            Kind::Detection => &[Measure::DetectAll, Measure::DetectFirst],
        }
    }

    fn log_y(&self) -> bool {
        matches!(self.kind, Kind::Median(Measure::Join))
    }

    fn samples(&self, implementation: &str, n: u64, measure: Measure) -> Vec<f64> {
        results::samples(self.lines, implementation, self.profile, n, measure)
    }

    /// The smallest and largest sample of the panel (positive; 1 when there is none).
    fn y_extent(&self) -> (f64, f64) {
        let all: Vec<f64> = IMPLS
            .iter()
            .flat_map(|i| self.sizes.iter().map(move |&n| (i, n)))
            .flat_map(|(i, n)| {
                self.measures()
                    .iter()
                    .flat_map(move |&m| self.samples(i, n, m))
            })
            .filter(|v| *v > 0.0)
            .collect();
        let max = all.iter().copied().fold(0.0_f64, f64::max);
        let min = all.iter().copied().fold(f64::INFINITY, f64::min);
        if all.is_empty() {
            (1.0, 1.0)
        } else {
            (min, max)
        }
    }

    /// Draws the mesh, both implementations and the legend; a cross at `top` marks a size
    /// where every repetition of an implementation failed.
    fn fill<'a, 'b: 'a, Y>(
        &self,
        chart: &mut Chart<'a, 'b, Y>,
        y_label: &str,
        top: f64,
    ) -> Result<(), Box<dyn std::error::Error>>
    where
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let x_range = chart.x_range();
        let steps = (x_range.end - x_range.start).round() as usize + 1;
        chart
            .configure_mesh()
            .x_labels(steps)
            .x_label_formatter(&|x| format!("{:.0}", x.exp2()))
            .x_desc("nodes")
            .y_desc(y_label)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 14))
            .draw()?;
        let measures = self.measures();
        for (i, implementation) in IMPLS.iter().enumerate() {
            let colour = COLOURS[i];
            // Side by side: rumour a little left of each size, memberlist a little right.
            let shift = if i == 0 { -0.08 } else { 0.08 };
            let stats: Vec<(f64, Stats)> = self
                .sizes
                .iter()
                .filter_map(|&n| {
                    Stats::of(self.samples(implementation, n, measures[0]))
                        .map(|s| (x_of(n) + shift, s))
                })
                .collect();
            chart
                .draw_series(LineSeries::new(
                    stats.iter().map(|(x, s)| (*x, s.median)),
                    colour.stroke_width(2),
                ))?
                .label(*implementation)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            match self.kind {
                Kind::Median(_) => {
                    chart.draw_series(
                        stats
                            .iter()
                            .map(|(x, s)| Circle::new((*x, s.median), 4, colour.filled())),
                    )?;
                    chart.draw_series(stats.iter().map(|(x, s)| {
                        PathElement::new(vec![(*x, s.min), (*x, s.max)], colour.stroke_width(2))
                    }))?;
                }
                Kind::Detection => {
                    for (measure, filled) in
                        [(Measure::DetectAll, true), (Measure::DetectFirst, false)]
                    {
                        let style = if filled {
                            colour.filled()
                        } else {
                            colour.stroke_width(1)
                        };
                        chart.draw_series(self.sizes.iter().flat_map(|&n| {
                            self.samples(implementation, n, measure)
                                .into_iter()
                                .map(move |y| Circle::new((x_of(n) + shift, y), 4, style))
                        }))?;
                    }
                }
            }
            let failed: Vec<f64> = self
                .sizes
                .iter()
                .filter(|&&n| {
                    self.samples(implementation, n, measures[0]).is_empty()
                        && results::failures(
                            self.lines,
                            implementation,
                            self.profile,
                            n,
                            measures[0],
                        ) > 0
                })
                .map(|&n| x_of(n) + shift)
                .collect();
            chart.draw_series(
                failed
                    .iter()
                    .map(|x| Cross::new((*x, top), 6, colour.stroke_width(3))),
            )?;
            chart.draw_series(failed.iter().map(|x| {
                Text::new(
                    "failed",
                    (*x, top),
                    ("sans-serif", 13).into_font().color(&colour),
                )
            }))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    }
}

/// Encodes an RGB buffer as a PNG file.
fn write_png(path: &Path, pixels: &[u8], (w, h): (u32, u32)) -> Result<(), String> {
    let shown = path.display();
    let file = fs::File::create(path).map_err(|e| format!("cannot create {shown}: {e}"))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|e| format!("cannot write {shown}: {e}"))?;
    writer
        .write_image_data(pixels)
        .map_err(|e| format!("cannot write {shown}: {e}"))
}

/// `cargo xtask plot`: the plots of the saved lines.
pub fn run(root: &Path) -> ExitCode {
    let result = crate::peers::read_saved(root).and_then(|lines| plot_all(root, &lines));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask plot: {error}");
            ExitCode::FAILURE
        }
    }
}
