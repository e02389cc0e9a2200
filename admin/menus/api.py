"""``/api/menus/...``: drafts, live checks, publish, rollback, versions and the TRY IT simulator. Admins only."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask_babel import gettext as _

from admin.access import allow, current
from admin.errors import answer_errors_as_json
from admin.i18n import refusal
from admin.json_replies import json_body, json_error
from admin.menus.check import graph
from admin.menus.lifecycle import Actor, MenuEditor
from admin.menus.models import (
    CheckBody,
    CheckResult,
    DraftBody,
    DraftView,
    MenuDetail,
    MenuList,
    PreviewBody,
    PreviewView,
    PublishBody,
    Published,
    Refusal,
    RollbackBody,
    SimEvent,
    SimStart,
    SimView,
    VersionDetail,
    VersionList,
)
from admin.menus.try_it import Simulator, event_of
from admin.openapi import ErrorBody, doc
from ivr.loader import MAX_MENU_BYTES, MenuError

TAGS = ("menus",)


def add_menu_api(bp: Blueprint, editor: MenuEditor, simulator: Simulator) -> None:
    """The JSON views of the menu editor, on the editor's blueprint."""

    @bp.get("/api/menus")
    @allow("admin")
    @doc({200: MenuList}, tags=TAGS)
    def list_menus() -> Response:
        return jsonify([_summary(editor.summary(name)) for name in editor.names()])

    @bp.get("/api/menus/<name>")
    @allow("admin")
    @doc({200: MenuDetail, 404: ErrorBody}, tags=TAGS)
    def show_menu(name: str) -> Response:
        return jsonify(editor.summary(name))

    @bp.put("/api/menus/<name>/draft")
    @allow("admin")
    @doc({200: DraftView, 400: ErrorBody}, json=DraftBody, tags=TAGS)
    def save_draft(name: str) -> Response:
        body = json_body()
        base = body.get("base_version")
        if base is not None and not isinstance(base, int):
            raise ValueError(_("base_version must be a version number"))
        return jsonify(editor.save_draft(name, _source(body), base, _actor()))

    @bp.delete("/api/menus/<name>/draft")
    @allow("admin")
    @doc({204: None, 404: ErrorBody}, tags=TAGS)
    def discard_draft(name: str) -> Response | tuple[Response, int]:
        if not editor.discard_draft(name, _actor()):
            return json_error(404, _("menu %(name)r has no draft", name=name))
        return Response(status=204)

    @bp.post("/api/menus/<name>/check")
    @allow("admin")
    @doc({200: CheckResult, 400: ErrorBody}, json=CheckBody, tags=TAGS)
    def check_draft(name: str) -> Response:
        checked = editor.check(name, _source(json_body()))
        return jsonify({"valid": checked.valid, "problems": [_problem(p) for p in checked.problems],
                        "graph": graph(checked.menu) if checked.menu is not None else None})

    @bp.post("/api/menus/<name>/publish")
    @allow("admin")
    @doc({201: Published, 400: Refusal, 409: ErrorBody}, json=PublishBody, tags=TAGS)
    def publish(name: str) -> tuple[Response, int]:
        body = json_body()
        source = _source(body) if body.get("source") is not None else None
        base = body.get("base_version")
        published = editor.publish(name, _actor(), source, base if isinstance(base, int) else None,
                                   overwrite=body.get("overwrite") is True)
        return jsonify(published), 201

    @bp.post("/api/menus/<name>/rollback")
    @allow("admin")
    @doc({201: Published, 400: Refusal, 404: ErrorBody}, json=RollbackBody, tags=TAGS)
    def rollback(name: str) -> tuple[Response, int]:
        version = json_body().get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(_("version must be the number of a published version"))
        return jsonify(editor.rollback(name, version, _actor())), 201

    @bp.post("/api/menus/<name>/preview")
    @allow("admin")
    @doc({200: PreviewView, 400: ErrorBody, 404: ErrorBody}, json=PreviewBody, tags=TAGS)
    def preview(name: str) -> Response:
        """What publishing a text, or rolling back to a version, would change in the live menu."""
        body = json_body()
        version = body.get("version")
        if version is not None:
            if not isinstance(version, int) or isinstance(version, bool):
                raise ValueError(_("version must be the number of a published version"))
            return jsonify(editor.preview(name, version=version))
        return jsonify(editor.preview(name, source=_source(body)))

    @bp.get("/api/menus/<name>/versions")
    @allow("admin")
    @doc({200: VersionList, 404: ErrorBody}, tags=TAGS)
    def versions(name: str) -> Response:
        return jsonify(editor.versions(name))

    @bp.get("/api/menus/<name>/versions/<int:version>")
    @allow("admin")
    @doc({200: VersionDetail, 404: ErrorBody}, tags=TAGS)
    def version(name: str, version: int) -> Response:
        return jsonify(editor.version(name, version))

    @bp.post("/api/menus/<name>/simulations")
    @allow("admin")
    @doc({201: SimView, 400: Refusal, 404: ErrorBody}, json=SimStart, tags=TAGS)
    def start_simulation(name: str) -> tuple[Response, int]:
        body = request.get_json(silent=True) or {}
        source = _source(body) if isinstance(body, dict) and body.get("source") is not None else _current(name)
        checked = editor.check(name, source)
        if not checked.valid or checked.menu is None:
            raise MenuError(checked.problems)
        return jsonify(simulator.start(checked.menu, source, current().name).to_json()), 201

    @bp.post("/api/menus/<name>/simulations/<sim_id>")
    @allow("admin")
    @doc({200: SimView, 400: ErrorBody, 404: ErrorBody}, json=SimEvent, tags=TAGS)
    def step_simulation(name: str, sim_id: str) -> Response:
        return jsonify(simulator.step(sim_id, current().name, event_of(json_body())).to_json())

    def _current(name: str) -> str:
        summary = editor.summary(name)
        return str(summary["draft"]["source"] if summary["draft"] else summary["live_source"])

    @bp.before_request
    def _menu_sized_bodies() -> None:
        # The app allows 64 KiB (webhooks); a menu may be up to MAX_MENU_BYTES, sent as a JSON string.
        if request.path.startswith("/api/menus/"):
            request.max_content_length = 2 * MAX_MENU_BYTES + 4096

    @bp.errorhandler(MenuError)
    def _refused(exc: MenuError) -> tuple[Response, int]:
        return jsonify({"error": "the menu has problems: " + str(exc),
                        "problems": [_problem(p) for p in exc.problems]}), 400

    answer_errors_as_json(bp)


def _source(body: dict[str, Any]) -> str:
    source = body.get("source")
    if not isinstance(source, str):
        raise ValueError(_("source must be the menu's YAML text"))
    if len(source.encode()) > MAX_MENU_BYTES:
        raise ValueError(_("a menu may be at most %(n)s KiB", n=MAX_MENU_BYTES // 1024))
    return source


def _actor() -> Actor:
    who = current()
    return Actor(who.name, who.role)


def _summary(detail: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in detail.items() if key != "live_source"}


def _problem(problem: Any) -> dict[str, Any]:
    return {"node": problem.node, "reason": refusal(problem.reason), "line": problem.line}
