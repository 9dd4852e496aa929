//! What the process uses and what the machine has, read from Linux's `/proc`.
//! Elsewhere every figure is `None`, and no memory limit applies by default.

fn status_field(file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|line| line.starts_with(field))?;
    let kib: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The process's resident memory now, in bytes.
pub fn resident() -> Option<u64> {
    status_field("/proc/self/status", "VmRSS:")
}

/// The process's peak resident memory so far (`VmHWM`), in bytes.
pub fn peak_resident() -> Option<u64> {
    status_field("/proc/self/status", "VmHWM:")
}

/// The memory the machine has, in bytes.
pub fn machine_total() -> Option<u64> {
    status_field("/proc/meminfo", "MemTotal:")
}

/// A default for `--max-memory`: three quarters of the machine's memory, which
/// leaves the operating system and other programs room before the kernel's
/// out-of-memory killer would act.
pub fn default_limit() -> Option<u64> {
    machine_total().map(|total| total / 4 * 3)
}
