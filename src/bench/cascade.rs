//! `audiencelens bench cascade`: what the cascade would send to Gemini and what that costs.
//! The local classifier runs on every picture of each folder (resized as profile pictures are
//! served); the `[gemini.cascade]` rules say which pictures go on, with the reason; the cost per
//! 1,000 pictures follows from the request this binary builds at `gemini.batch_size` and the
//! configured price. Nothing is sent anywhere.
//!
//! Token counts are estimates: text at four characters per token, the answer per picture from
//! a typical answer's JSON, images at the documented 258 tokens (Gemini 2.x, up to 384 px) and at
//! `--low-image-tokens` for `MEDIA_RESOLUTION_LOW`. The ledger of a real run records the exact
//! counts Gemini reports.
//!
//! Owns: the estimate and its report. Uses: `vision`, `cascade`, `clients::gemini`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::cascade::needs_gemini;
use crate::clients::gemini::SYSTEM_INSTRUCTION;
use crate::config::Config;
use crate::vision::decode::DecodeLimits;
use crate::vision::{Classifier, batch, dataset};

#[derive(Debug, clap::Args)]
pub struct CascadeBenchArgs {
    /// Folders of pictures (each reported on its own, then all together).
    #[arg(long, required = true, num_args = 1..)]
    pub images: Vec<PathBuf>,
    /// Resize each picture so its longer side is this many pixels first (JPEG q95).
    #[arg(long, default_value_t = 150)]
    pub size: u32,
    /// Only the first N pictures of each folder.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Image tokens assumed with `MEDIA_RESOLUTION_LOW` on Gemini 2.x.
    #[arg(long, default_value_t = 64)]
    pub low_image_tokens: u32,
}

/// Tokens of a picture's answer: a typical answer item, at four characters per token.
fn answer_tokens() -> f64 {
    let item = r#"{"index":11,"profile_type":"person","no_person_kind":"none","gender":"female","age_bracket":"25-34","confidence":0.93},"#;
    item.len() as f64 / 4.0
}

/// Estimated cost of 1,000 pictures in US dollars, and the tokens per picture behind it.
fn cost_per_1000(config: &Config, image_tokens: u32) -> (f64, f64, f64) {
    let g = &config.settings.gemini;
    let batch = g.batch_size.max(1) as f64;
    let fixed_text =
        (SYSTEM_INSTRUCTION.len() + "Return one result per image index, 0 to 11.".len()) as f64 / 4.0;
    let prompt = f64::from(image_tokens) + "Image 11:".len() as f64 / 4.0 + fixed_text / batch;
    let output = answer_tokens();
    let price = g.price().map_or((0.0, 0.0), |p| (p.input, p.output));
    let usd = 1000.0 * (prompt * price.0 + output * price.1) / 1e6;
    (usd, prompt, output)
}

pub fn run(args: &CascadeBenchArgs, config: &Config) -> anyhow::Result<()> {
    let settings = &config.settings.vision;
    let classifier = Classifier::load(settings).context("loading the local classifier")?;
    let rules = &config.settings.gemini.cascade;
    let limits = DecodeLimits::from(settings);
    println!(
        "cascade rules: gender confidence < {}, top bracket < {}, groups {}, no person {}; pictures at {} px",
        rules.min_gender_confidence,
        rules.min_age_confidence,
        if rules.send_groups { "sent" } else { "kept" },
        if rules.send_no_person { "sent" } else { "kept" },
        args.size
    );
    println!("{:<28} {:>8} {:>8} {:>8}  reasons", "folder", "pictures", "sent", "share");
    let (mut all, mut all_sent) = (0usize, 0usize);
    for folder in &args.images {
        let paths = dataset::select(folder, None, args.limit)
            .with_context(|| format!("reading {}", folder.display()))?;
        let (pictures, skipped) = dataset::prepare(&paths, Some(args.size), 95, &limits);
        let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut counted = 0usize;
        batch::run_ordered(
            &pictures,
            classifier.threads(),
            |p| classifier.classify(&p.bytes).ok(),
            |_, result| {
                if let Some(r) = result {
                    counted += 1;
                    if let Some(why) = needs_gemini(&r, rules) {
                        *reasons.entry(why).or_default() += 1;
                    }
                }
            },
        );
        let sent: usize = reasons.values().sum();
        let share = if counted > 0 { sent as f64 / counted as f64 } else { 0.0 };
        let name =
            folder.file_name().map_or_else(|| folder.display().to_string(), |n| n.to_string_lossy().into());
        let detail: Vec<String> = reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!(
            "{name:<28} {counted:>8} {sent:>8} {:>7.1}%  {}{}",
            share * 100.0,
            detail.join(", "),
            if skipped.count > 0 {
                format!(" ({} unreadable files skipped)", skipped.count)
            } else {
                String::new()
            }
        );
        all += counted;
        all_sent += sent;
    }
    let share = if all > 0 { all_sent as f64 / all as f64 } else { 0.0 };
    println!("{:<28} {all:>8} {all_sent:>8} {:>7.1}%", "all", share * 100.0);
    let g = &config.settings.gemini;
    println!(
        "\nGemini cost estimate: {} at {} pictures per request, ${}/${} per million input/output tokens",
        g.model,
        g.batch_size,
        g.price().map_or(0.0, |p| p.input),
        g.price().map_or(0.0, |p| p.output)
    );
    for (label, tokens) in
        [("image at MEDIA_RESOLUTION_LOW", args.low_image_tokens), ("image at 258 tokens", 258)]
    {
        let (usd, prompt, output) = cost_per_1000(config, tokens);
        println!(
            "  {label:<30} {prompt:>6.0} prompt + {output:>4.0} output tokens per picture: ${usd:.4} per 1,000 \
             pictures; cascade at {:.1}% sent: ${:.4} per 1,000 commenters",
            share * 100.0,
            usd * share
        );
    }
    Ok(())
}
