"""The composer: the chosen model, the project, the prompt, the options of its modality, the
estimate, every reason a run cannot start yet, the Run button and the latest run's status."""

from __future__ import annotations

import reflex as rx
from reflex.vars.function import FunctionStringVar

from creative_studio.components.forms import label_for
from creative_studio.components.page import card, muted, status_badge
from state.studio import ASPECTS, LENGTHS, PROMPT_INPUT_CHARS, SECONDS, TONES, StudioState

# Ctrl+Enter (Cmd+Enter on a Mac) in the prompt submits the form, in the browser: no event
# per keystroke goes to the server. The form carries the prompt, so nothing typed is lost.
RUN_ON_CTRL_ENTER = FunctionStringVar.create(
    "((key, info) => { if (key === 'Enter' && (info.ctrl_key || info.meta_key)) "
    "{ document.getElementById('studio-prompt')?.form?.requestSubmit(); } })"
)


def _select(label: str, field_id: str, value, items: list[tuple[str, str]], on_change):
    return rx.vstack(
        label_for(label, field_id),
        rx.select.root(
            rx.select.trigger(id=field_id, width="100%"),
            rx.select.content(*[rx.select.item(text, value=val) for val, text in items]),
            value=value,
            on_change=on_change,
        ),
        spacing="1",
        width="100%",
    )


def _option(label: str, field_id: str, name: str, items: list[tuple[str, str]]):
    return _select(
        label,
        field_id,
        getattr(StudioState, name),
        items,
        lambda value: StudioState.set_option(name, value),
    )


def _options() -> rx.Component:
    return rx.match(
        StudioState.modality,
        (
            "text",
            rx.grid(
                _option("Tone", "opt-tone", "tone", [(t, t.capitalize()) for t in TONES]),
                _option("Length", "opt-length", "length", [(x, x.capitalize()) for x in LENGTHS]),
                columns="2",
                spacing="3",
                width="100%",
            ),
        ),
        ("image", _option("Size and aspect", "opt-aspect", "aspect", ASPECTS)),
        rx.grid(
            _option("Duration", "opt-seconds", "seconds", [(s, f"{s} seconds") for s in SECONDS]),
            _option("Aspect", "opt-video-aspect", "aspect", ASPECTS[1:]),
            columns="2",
            spacing="3",
            width="100%",
        ),
    )


def _project_field() -> rx.Component:
    return rx.cond(
        StudioState.projects.length() > 0,
        rx.vstack(
            label_for("Project", "studio-project"),
            rx.select.root(
                rx.select.trigger(id="studio-project", width="100%"),
                rx.select.content(
                    rx.foreach(
                        StudioState.projects,
                        lambda p: rx.select.item(p.name, value=p.id),
                    )
                ),
                value=StudioState.project_id,
                on_change=StudioState.set_project,
            ),
            spacing="1",
            width="100%",
        ),
        muted(
            "No project yet: runs are saved to the organization. Owners and admins can "
            "create projects in Team."
        ),
    )


def _prompt_field() -> rx.Component:
    return rx.vstack(
        label_for("Prompt", "studio-prompt"),
        rx.text_area(
            id="studio-prompt",
            name="prompt",
            value=StudioState.prompt,
            on_change=StudioState.set_prompt.debounce(250),
            on_blur=StudioState.check_blockers,
            on_key_down=RUN_ON_CTRL_ENTER,
            placeholder="Describe what to create, e.g. a launch post for our spring running shoes",
            rows="4",
            width="100%",
            # Over the limit is allowed a little, so it is refused with the limit named and
            # never cut silently (the counter below says how far over it is).
            max_length=PROMPT_INPUT_CHARS,
            aria_describedby="prompt-count",
        ),
        rx.flex(
            rx.text(
                StudioState.prompt_count_label,
                size="1",
                id="prompt-count",
                aria_live="polite",
                color=rx.cond(
                    StudioState.prompt_over_limit, rx.color("red", 11), rx.color("gray", 10)
                ),
            ),
            rx.spacer(),
            rx.text("Ctrl+Enter (⌘+Enter) runs", size="1", color=rx.color("gray", 10)),
            width="100%",
            spacing="2",
            wrap="wrap",
        ),
        spacing="1",
        width="100%",
    )


def _estimate() -> rx.Component:
    return rx.hstack(
        rx.icon("coins", size=16, aria_hidden="true"),
        rx.text(
            "Estimate: ",
            rx.text.strong(StudioState.estimate_label),
            " (held when the run starts; you pay only what it uses). Balance: ",
            rx.text.strong(StudioState.balance_label),
            ".",
            size="2",
        ),
        align="center",
        spacing="2",
        id="run-estimate",
    )


def _blockers() -> rx.Component:
    return rx.cond(
        StudioState.blockers.length() > 0,
        rx.callout.root(
            rx.callout.icon(rx.icon("octagon-alert")),
            rx.vstack(
                rx.text("Why this cannot run yet", weight="bold", size="2"),
                rx.el.ul(
                    rx.foreach(
                        StudioState.blockers,
                        lambda b: rx.el.li(
                            rx.text(
                                b.message,
                                rx.cond(
                                    b.link_href != "",
                                    rx.fragment(" ", rx.link(b.link_label, href=b.link_href)),
                                ),
                                size="2",
                            ),
                            custom_attrs={"data-code": b.code},
                        ),
                    ),
                    style={"padding_left": "1rem", "margin": "0"},
                ),
                spacing="1",
            ),
            color_scheme="amber",
            role="status",
            id="run-blockers",
            width="100%",
        ),
    )


def _error() -> rx.Component:
    return rx.cond(
        StudioState.error != "",
        rx.callout(
            StudioState.error,
            icon="triangle-alert",
            color_scheme="red",
            role="alert",
            width="100%",
        ),
    )


def _run_button() -> rx.Component:
    return rx.button(
        rx.cond(StudioState.running, rx.spinner(size="2"), rx.icon("play", size=16)),
        rx.cond(StudioState.running, "Running…", "Run"),
        type="submit",
        size="3",
        aria_describedby="run-estimate run-blockers",
    )


def _live_status() -> rx.Component:
    return rx.cond(
        StudioState.live_id != "",
        rx.hstack(
            rx.text("Latest run ", rx.code(StudioState.live_id), size="2"),
            status_badge(StudioState.live_status),
            align="center",
            spacing="2",
            role="status",
            aria_live="polite",
            id="live-status",
        ),
    )


def composer() -> rx.Component:
    return rx.form(
        card(
            "Create",
            muted(
                "Model: ",
                rx.text.strong(
                    rx.cond(StudioState.selected_name != "", StudioState.selected_name, "none")
                ),
            ),
            _project_field(),
            _prompt_field(),
            _options(),
            _estimate(),
            _blockers(),
            _error(),
            _run_button(),
            _live_status(),
        ),
        on_submit=StudioState.run,
        reset_on_submit=False,
        width="100%",
    )
