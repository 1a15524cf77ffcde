//! `vrooli sandbox`: the child side. Reads one [`Request`] from stdin, limits itself (address
//! space, CPU seconds, no new files, no new processes, no file writes), runs the script in a
//! fresh QuickJS runtime with a memory limit, a stack limit and an interrupt at the deadline,
//! and writes one [`Reply`] to stdout. The engine gets no host functions: only the language's
//! own built-ins (JSON, Math, Date, …) and the global `input`.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rquickjs::{CatchResultExt, CaughtError, Context, Runtime};

use super::{Reply, Request};

/// The most request bytes read (the parent bounds code and input well below this).
const MAX_REQUEST_BYTES: u64 = 16 * 1024 * 1024;

pub fn main() -> ExitCode {
    let mut raw = Vec::new();
    if std::io::stdin()
        .take(MAX_REQUEST_BYTES)
        .read_to_end(&mut raw)
        .is_err()
    {
        return ExitCode::from(3);
    }
    let Ok(request) = serde_json::from_slice::<Request>(&raw) else {
        return ExitCode::from(3);
    };
    drop(raw);
    if limit_process(&request).is_err() {
        return ExitCode::from(4);
    }
    let reply = run(&request);
    let Ok(text) = serde_json::to_vec(&reply) else {
        return ExitCode::from(5);
    };
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(&text)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::from(5);
    }
    ExitCode::SUCCESS
}

/// OS limits on this process, set before any script runs: the kernel's backstop for escapes
/// from the engine's own limits.
fn limit_process(request: &Request) -> std::io::Result<()> {
    let cpu_secs = Duration::from_millis(request.timeout_ms).as_secs() + 1;
    for (resource, value) in [
        (libc::RLIMIT_AS, request.address_space_bytes),
        (libc::RLIMIT_CPU, cpu_secs),
        // stdin, stdout and stderr are open; nothing else may be.
        (libc::RLIMIT_NOFILE, 3),
        (libc::RLIMIT_NPROC, 0),
        (libc::RLIMIT_FSIZE, 0),
        (libc::RLIMIT_CORE, 0),
    ] {
        let limit = libc::rlimit {
            rlim_cur: value as libc::rlim_t,
            rlim_max: value as libc::rlim_t,
        };
        // SAFETY: setrlimit reads the struct we pass and changes only this process's limits.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn run(request: &Request) -> Reply {
    let Ok(runtime) = Runtime::new() else {
        return Reply::OutOfMemory;
    };
    runtime.set_memory_limit(request.memory_bytes);
    runtime.set_max_stack_size(request.stack_bytes);
    let deadline = Instant::now() + Duration::from_millis(request.timeout_ms);
    runtime.set_interrupt_handler(Some(Box::new(move || Instant::now() >= deadline)));
    let Ok(context) = Context::full(&runtime) else {
        return Reply::OutOfMemory;
    };
    let input = request.input.to_string();
    // The code is a function body: `input` is its argument, what it returns is the result.
    let source = format!("(function (input) {{\n{}\n}})(__input)", request.code);
    context.with(|ctx| {
        let outcome = (|| {
            let input = ctx.json_parse(input)?;
            ctx.globals().set("__input", input)?;
            let value: rquickjs::Value = ctx.eval(source)?;
            let text = ctx.json_stringify(value)?;
            Ok::<_, rquickjs::Error>(match text {
                Some(text) => text.to_string()?,
                None => "null".to_owned(),
            })
        })()
        .catch(&ctx);
        match outcome {
            Ok(text) => match serde_json::from_str(&text) {
                Ok(result) => Reply::Ok { result },
                Err(e) => Reply::Script {
                    message: format!("the result is not JSON: {e}"),
                },
            },
            Err(error) => classify(error, deadline),
        }
    })
}

fn classify(error: CaughtError<'_>, deadline: Instant) -> Reply {
    if Instant::now() >= deadline {
        return Reply::Timeout;
    }
    let message = match &error {
        CaughtError::Exception(exception) => {
            let name = exception
                .get::<_, String>("name")
                .unwrap_or_else(|_| "Error".into());
            format!("{name}: {}", exception.message().unwrap_or_default())
        }
        CaughtError::Value(value) => format!("thrown: {value:?}"),
        CaughtError::Error(error) => error.to_string(),
    };
    if message.contains("out of memory")
        || matches!(error, CaughtError::Error(rquickjs::Error::Allocation))
    {
        Reply::OutOfMemory
    } else {
        Reply::Script { message }
    }
}
