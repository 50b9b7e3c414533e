//! The FAT file system on `blk0` through `bareflow_sys::fs` (paths under
//! `/disk/`): a file the host put there is read, files and a directory are
//! made, appended, listed, removed, and bad requests get clear errors. The
//! host then reads what the guest wrote with mtools.
use bareflow_sys::fs;
use bareflow_sys::prelude::*;

/// What the guest writes to `/disk/GUEST.TXT` (the host checks the same).
pub fn guest_text() -> String {
    (0..3000).map(|i| format!("line {i} written by the BareFlow guest\n")).collect()
}

fn step(what: &str, r: Result<(), fs::Error>) -> bool {
    match r {
        Ok(()) => true,
        Err(e) => {
            println!("fs: {what}: {e}");
            false
        }
    }
}

pub fn run() -> i32 {
    let host = match fs::read("/disk/HOST.TXT") {
        Ok(b) => b,
        Err(e) => {
            println!("fs: {e}");
            return 1;
        }
    };
    println!("fs: host file says {:?}", String::from_utf8_lossy(&host).trim_end());
    let text = guest_text();
    let t = bareflow_sys::time::Instant::now();
    let ok = step("write", fs::write("/disk/GUEST.TXT", text.as_bytes()))
        && step("append", fs::append("/disk/GUEST.TXT", b"the end\n"))
        && step("mkdir", fs::create_dir("/disk/SUB"))
        && step("write in a directory", fs::write("/disk/SUB/A.TXT", b"in a subdirectory\n"))
        && step("write a file to remove", fs::write("/disk/SUB/GONE.TXT", b"x"))
        && step("remove", fs::remove_file("/disk/SUB/GONE.TXT"));
    if !ok {
        return 1;
    }
    let back = match fs::read("/disk/GUEST.TXT") {
        Ok(b) => b,
        Err(e) => {
            println!("fs: read back: {e}");
            return 1;
        }
    };
    let want = format!("{text}the end\n");
    if back != want.as_bytes() {
        println!("fs: read back {} bytes, want {}", back.len(), want.len());
        return 1;
    }
    println!("fs: wrote and read back {} bytes in {:.1} ms", back.len(), t.elapsed().as_secs_f64() * 1e3);
    match fs::metadata("/disk/GUEST.TXT") {
        Ok(m) => println!("fs: metadata len {} dir {}", m.len, m.is_dir),
        Err(e) => println!("fs: metadata: {e}"),
    }
    match fs::metadata("/disk/SUB") {
        Ok(m) => println!("fs: SUB is a directory: {}", m.is_dir),
        Err(e) => println!("fs: metadata SUB: {e}"),
    }
    for dir in ["/disk", "/disk/SUB"] {
        match fs::read_dir(dir) {
            Ok(v) => {
                let names: Vec<String> = v.iter().map(|e| format!("{}{}", e.name, if e.metadata.is_dir { "/" } else { "" })).collect();
                println!("fs: {dir} holds {}", names.join(" "));
            }
            Err(e) => println!("fs: read_dir {dir}: {e}"),
        }
    }
    match fs::metadata("/disk/SUB/GONE.TXT") {
        Err(e) => println!("fs: removed file: {e}"),
        Ok(_) => println!("fs: the removed file is still there"),
    }
    match fs::write("/disk/averyverylongname.text", b"x") {
        Err(e) => println!("fs: long name refused: {e}"),
        Ok(()) => println!("fs: a long name was accepted"),
    }
    match fs::write("data.txt", b"x") {
        Err(e) => println!("fs: boot file write refused: {e}"),
        Ok(()) => println!("fs: a boot-time file was written"),
    }
    match fs::read("/disk/NOPE/X.TXT") {
        Err(e) => println!("fs: missing directory: {e}"),
        Ok(_) => println!("fs: read a file in a missing directory"),
    }
    println!("fs: done");
    0
}
