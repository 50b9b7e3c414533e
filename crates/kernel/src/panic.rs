//! The panic handler: message, location, backtrace, exit code 101.
use core::panic::PanicInfo;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let hal = bareflow_hal::console::write_raw;
    match info.location() {
        Some(l) => hal(format_args!("\npanicked at {}:{}:{}:\n{}\n", l.file(), l.line(), l.column(), info.message())),
        None => hal(format_args!("\npanicked:\n{}\n", info.message())),
    }
    bareflow_hal::trap::print_backtrace();
    bareflow_hal::exit::exit(bareflow_abi::exit::PANIC)
}
