//! `cargo xtask test`: placeholder until the pipeline lands.
pub fn run() -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
