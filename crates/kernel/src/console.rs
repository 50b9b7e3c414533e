//! The console (serial) and the `log` backend.
use core::fmt;

/// Writes formatted text to the console.
pub fn write_fmt(args: fmt::Arguments<'_>) {
    bareflow_hal::console::write_fmt(args);
}

/// Writes raw bytes to the console.
pub fn write_bytes(bytes: &[u8]) {
    bareflow_hal::console::write_bytes(bytes);
}

/// Prints a line on the console (kernel-internal).
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => { $crate::console::write_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

struct SerialLogger;

impl log::Log for SerialLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let ms = crate::time::monotonic_nanos() / 1_000_000;
            write_fmt(format_args!("[{ms:>6} ms {:<5} {}] {}\n", record.level(), record.target(), record.args()));
        }
    }

    fn flush(&self) {}
}

static LOGGER: SerialLogger = SerialLogger;

/// Installs the serial logger; the level comes from `bareflow.log=LEVEL` (default `warn`).
pub(crate) fn init_logger() {
    let _ = log::set_logger(&LOGGER);
    let level = crate::env::kernel_option("bareflow.log")
        .and_then(|l| l.parse::<log::LevelFilter>().ok())
        .unwrap_or(log::LevelFilter::Warn);
    log::set_max_level(level);
}
