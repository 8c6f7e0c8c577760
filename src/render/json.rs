//! JSON: the report's own serde form, pretty-printed, ending in a newline.

pub fn render<R: serde::Serialize>(report: &R) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    Ok(text)
}
