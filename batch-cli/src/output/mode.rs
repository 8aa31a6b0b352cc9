//! The display decision: one pure function from what the process sees
//! (is stderr a terminal, `NO_COLOR`, `CI`) and what the user asked
//! (`--json`, `--color`, `-v`) to which reporter draws and whether in colour.
//!
//! The rules, in order:
//! - `--json`: stdout carries the events, one per line, and nothing else.
//!   People still watching stderr on a terminal get plain lines there (a live
//!   display would fight with JSON written to the same screen); a script whose
//!   stderr is not a terminal gets nothing on stderr but warnings, unless `-v`.
//! - otherwise the live display when stderr is a terminal and `CI` is not set
//!   (CI logs keep every byte; redraws make them unreadable), plain timestamped
//!   lines in every other case.
//! - colour: `--color always` / `never` win; `auto` colours only a terminal
//!   stderr and only when `NO_COLOR` is unset (<https://no-color.org>).
//! - `-v` adds every subagent output line, tagged with its task id, to
//!   whichever human reporter draws.

use crate::args::ColorChoice;

/// What the process sees around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Env {
    /// stderr is a terminal.
    pub stderr_tty: bool,
    /// `NO_COLOR` is set to a non-empty value.
    pub no_color: bool,
    /// `CI` is set (to anything but empty, `0` or `false`).
    pub ci: bool,
}

impl Env {
    /// Reads the real process environment.
    pub fn detect() -> Self {
        use std::io::IsTerminal;
        Self {
            stderr_tty: std::io::stderr().is_terminal(),
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            ci: std::env::var_os("CI").is_some_and(|v| {
                let v = v.to_string_lossy().to_ascii_lowercase();
                !(v.is_empty() || v == "0" || v == "false")
            }),
        }
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// `--json`.
    pub json: bool,
    /// `--color`.
    pub color: ColorChoice,
    /// `-v`.
    pub verbose: bool,
}

/// Which human reporter draws on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Human {
    /// The live display (indicatif).
    Live,
    /// Plain timestamped lines.
    Plain,
    /// Nothing but warnings and the final errors.
    Quiet,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// The reporter on stderr.
    pub human: Human,
    /// JSON events on stdout.
    pub json: bool,
    /// Colour on stderr.
    pub color: bool,
    /// Print every subagent output line tagged with its task id.
    pub tag_output: bool,
}

/// The pure display decision (see the module docs for the rules).
pub fn decide(env: Env, req: Request) -> Mode {
    let human = if req.json {
        if env.stderr_tty || req.verbose {
            Human::Plain
        } else {
            Human::Quiet
        }
    } else if env.stderr_tty && !env.ci {
        Human::Live
    } else {
        Human::Plain
    };
    let color = match req.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => env.stderr_tty && !env.no_color,
    };
    Mode {
        human,
        json: req.json,
        color: color && human != Human::Quiet,
        tag_output: req.verbose && human != Human::Quiet,
    }
}

/// Colour for commands other than `run` (status, logs): same rule, stdout or stderr as given.
pub fn color_for(is_tty: bool, no_color: bool, choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_tty && !no_color,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLORS: [ColorChoice; 3] = [ColorChoice::Auto, ColorChoice::Always, ColorChoice::Never];

    /// Every combination of the six inputs, with the expected answer written
    /// out independently of `decide`'s code path.
    #[test]
    fn every_combination_of_terminal_no_color_ci_json_color_and_verbose() {
        let mut seen = 0;
        for stderr_tty in [false, true] {
            for no_color in [false, true] {
                for ci in [false, true] {
                    for json in [false, true] {
                        for color in COLORS {
                            for verbose in [false, true] {
                                let env = Env {
                                    stderr_tty,
                                    no_color,
                                    ci,
                                };
                                let req = Request {
                                    json,
                                    color,
                                    verbose,
                                };
                                let m = decide(env, req);
                                seen += 1;

                                // stdout carries JSON exactly when asked.
                                assert_eq!(m.json, json, "{env:?} {req:?}");

                                let expected_human = match (json, stderr_tty, ci, verbose) {
                                    (true, true, _, _) => Human::Plain,
                                    (true, false, _, true) => Human::Plain,
                                    (true, false, _, false) => Human::Quiet,
                                    (false, true, false, _) => Human::Live,
                                    (false, true, true, _) => Human::Plain,
                                    (false, false, _, _) => Human::Plain,
                                };
                                assert_eq!(m.human, expected_human, "{env:?} {req:?}");

                                // Live never without a terminal, never in CI, never with --json.
                                if m.human == Human::Live {
                                    assert!(stderr_tty && !ci && !json);
                                }

                                let expected_color = expected_human != Human::Quiet
                                    && match color {
                                        ColorChoice::Always => true,
                                        ColorChoice::Never => false,
                                        ColorChoice::Auto => stderr_tty && !no_color,
                                    };
                                assert_eq!(m.color, expected_color, "{env:?} {req:?}");

                                assert_eq!(
                                    m.tag_output,
                                    verbose && expected_human != Human::Quiet,
                                    "{env:?} {req:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(seen, 2 * 2 * 2 * 2 * 3 * 2);
    }

    #[test]
    fn no_color_turns_auto_colour_off_on_a_terminal_but_not_an_explicit_always() {
        let env = Env {
            stderr_tty: true,
            no_color: true,
            ci: false,
        };
        let auto = Request {
            json: false,
            color: ColorChoice::Auto,
            verbose: false,
        };
        assert!(!decide(env, auto).color);
        let always = Request {
            color: ColorChoice::Always,
            ..auto
        };
        assert!(decide(env, always).color);
    }

    #[test]
    fn a_pipe_never_gets_escape_codes_by_default() {
        let env = Env {
            stderr_tty: false,
            no_color: false,
            ci: false,
        };
        let m = decide(
            env,
            Request {
                json: false,
                color: ColorChoice::Auto,
                verbose: false,
            },
        );
        assert_eq!(m.human, Human::Plain);
        assert!(!m.color);
    }

    #[test]
    fn color_for_other_commands_follows_the_same_rule() {
        for tty in [false, true] {
            for nc in [false, true] {
                assert!(color_for(tty, nc, ColorChoice::Always));
                assert!(!color_for(tty, nc, ColorChoice::Never));
                assert_eq!(color_for(tty, nc, ColorChoice::Auto), tty && !nc);
            }
        }
    }
}
