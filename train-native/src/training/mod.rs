//! Training Restora's foundation model (`train-native train`): one experiment file
//! ([`config`]), batches of degraded patches made on worker threads ([`data`]) from clean images
//! or real degraded / clean pairs ([`paired`]: SIDD, GoPro, REDS, input/target), the task
//! alternation or mix, progressive patches and learning-rate schedule ([`schedule`]), the
//! hand-written loop ([`train_loop`]), validation ([`validate`]), resumable checkpoints
//! ([`checkpoint`]) and the JSONL log ([`log`]); on several devices and machines, data-parallel
//! replicas ([`data_parallel`]).
//!
//! A run is reproducible: the initial weights come from the seed, and every patch, flip and
//! degradation of step `s` from `(seed, s)` alone, so a run stopped and resumed ends with the same
//! weights as one that never stopped.

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod data_parallel;
pub mod grad_clip;
pub mod interrupt;
pub mod log;
pub mod paired;
pub mod schedule;
pub mod train_loop;
pub mod validate;

pub use config::ExperimentConfig;
pub use train_loop::{run, saved_config, Session};
