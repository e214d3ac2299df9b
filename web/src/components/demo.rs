//! Demo mode: damage a clean sample with one of the training degradations, restore it, and
//! measure PSNR / SSIM against the original.

use leptos::prelude::*;

use crate::demo_params::{DemoKind, DEMO_SEED};
use crate::engine::{self, EngineHandle};
use crate::state::AppState;

#[component]
pub fn Demo() -> impl IntoView {
    let state = expect_context::<AppState>();
    let engine = expect_context::<EngineHandle>();
    let metrics = move || state.metrics.get();
    let number = |v: Option<f64>, digits: usize| v.map_or(String::new(), |v| format!("{v:.digits$}"));
    view! {
        <section class="card demo">
            <label class="field inline">
                <input
                    type="checkbox"
                    data-testid="demo-mode"
                    prop:checked=move || state.demo_mode.get()
                    on:change=move |ev| state.demo_mode.set(event_target_checked(&ev))
                />
                <h2>"Demo mode"</h2>
            </label>
            <Show when=move || state.demo_mode.get()>
                <p class="hint">
                    "Damage a clean sample the way the model was trained, restore it, and compare with the original."
                </p>
                <label class="field">
                    <span>"Sample"</span>
                    <select
                        data-testid="demo-sample"
                        on:change=move |ev| state.demo_sample.set(event_target_value(&ev))
                    >
                        <For
                            each=move || state.samples.get()
                            key=|sample| sample.stem.clone()
                            children=move |sample| {
                                let stem = sample.stem.clone();
                                view! {
                                    <option
                                        value=sample.stem.clone()
                                        prop:selected=move || state.demo_sample.get() == stem
                                    >
                                        {sample.stem.clone()}
                                    </option>
                                }
                            }
                        />
                    </select>
                </label>
                <label class="field">
                    <span>"Degradation"</span>
                    <select
                        data-testid="demo-degradation"
                        on:change=move |ev| {
                            if let Some(kind) = DemoKind::from_name(&event_target_value(&ev)) {
                                state.demo_kind.set(kind);
                            }
                        }
                    >
                        {DemoKind::ALL
                            .into_iter()
                            .map(|kind| {
                                view! {
                                    <option value=kind.name() prop:selected=move || state.demo_kind.get() == kind>
                                        {kind.label()}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                </label>
                <label class="field">
                    <span>
                        "Strength: "
                        {move || state.demo_kind.get().describe(state.demo_strength.get() as f32)}
                    </span>
                    <input
                        type="range"
                        min="0"
                        max="100"
                        step="1"
                        data-testid="demo-strength"
                        prop:value=move || state.demo_strength.get().to_string()
                        on:input=move |ev| {
                            if let Ok(value) = event_target_value(&ev).parse::<f64>() {
                                state.demo_strength.set(value.clamp(0.0, 100.0));
                            }
                        }
                    />
                </label>
                <div class="buttons">
                    <button
                        class="primary"
                        data-testid="demo-run"
                        disabled=move || state.phase.get().busy()
                        on:click=move |_| engine::start_demo(state, engine)
                    >
                        "Degrade and restore"
                    </button>
                </div>
                <p class="hint">{format!("Seed {DEMO_SEED}; error maps: jet, dark red at a mean error of 0.1.")}</p>
                <dl class="metrics">
                    <dt>"PSNR"</dt>
                    <dd
                        data-testid="demo-psnr"
                        data-input=move || metrics().map(|m| format!("{:.4}", m.psnr_input))
                        data-result=move || metrics().and_then(|m| m.psnr_result).map(|v| format!("{v:.4}"))
                    >
                        {move || match metrics() {
                            Some(m) => {
                                format!(
                                    "degraded {} dB → restored {}",
                                    number(Some(m.psnr_input), 2),
                                    m.psnr_result.map_or("–".into(), |v| format!("{v:.2} dB")),
                                )
                            }
                            None => "–".into(),
                        }}
                    </dd>
                    <dt>"SSIM"</dt>
                    <dd
                        data-testid="demo-ssim"
                        data-input=move || metrics().map(|m| format!("{:.6}", m.ssim_input))
                        data-result=move || metrics().and_then(|m| m.ssim_result).map(|v| format!("{v:.6}"))
                    >
                        {move || match metrics() {
                            Some(m) => {
                                format!(
                                    "degraded {} → restored {}",
                                    number(Some(m.ssim_input), 4),
                                    m.ssim_result.map_or("–".into(), |v| format!("{v:.4}")),
                                )
                            }
                            None => "–".into(),
                        }}
                    </dd>
                </dl>
            </Show>
        </section>
    }
}
