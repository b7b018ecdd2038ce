"""Every text the bot sends, in one place."""

from __future__ import annotations

from datetime import timedelta

from core.access import Member
from core.cases import CaseDetail, HistoryPage
from core.enums import JobStatus, Role, SubmissionStatus
from core.laboratory import Proposal, Standing, breakdown
from core.registry import ModelEntry, ScreenCard
from core.retraining.jobs import JobReport
from core.reviews import ReviewableCell, Reviewed
from core.submissions import GAVE_UP, CellView, Delivery
from vision.field.results import (
    CONFIDENCE_WITHHELD,
    TRUST_REASONS,
    confidence_text,
    flagged_by_model,
    in_clinical_order,
    platelet_text,
    reasons_in_words,
    reasons_tally,
)
from vision.findings import findings, of_counts
from vision.labels import NOT_RECOGNISED, display_name, expert_name

# Telegram's limits, counted in UTF-16 code units as Telegram counts them (an emoji is two).
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
ANSWER_LIMIT = 200  # the toast of a button press
SHORTENED = "… (shortened to fit one message)"


def telegram_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _cut(text: str, limit: int) -> tuple[str, str]:
    """The longest head of ``text`` within ``limit`` units, and the rest."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if telegram_length(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low], text[low:]


def pages(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """``text`` as consecutive messages within the limit, broken between lines (a line too long
    for one message on its own is broken inside it)."""
    result: list[str] = []
    current: str | None = None
    for line in text.split("\n"):
        while telegram_length(line) > limit:
            if current is not None:
                result.append(current)
                current = None
            head, line = _cut(line, limit)
            result.append(head)
        joined = line if current is None else f"{current}\n{line}"
        if telegram_length(joined) <= limit:
            current = joined
        else:
            result.append(current or "")
            current = line
    if current is not None:
        result.append(current)
    return [page for page in result if page.strip()] or [text[:1] or "…"]


def fit(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` shortened to one message (an edit cannot become two): whole lines, then a note."""
    if telegram_length(text) <= limit:
        return text
    head = pages(text, limit - telegram_length(SHORTENED) - 1)[0]
    return f"{head}\n{SHORTENED}"


DISCLAIMER = (
    "⚠️ Decision support only, not a diagnosis: a qualified person must confirm every result."
)

WELCOME = (
    "Welcome to HematoVision 🔬\n\n"
    "Send me a photo of a stained peripheral blood smear (or of a single white cell) taken "
    "through the microscope, and I will classify the cells and tell you how confident I am.\n\n"
    "Best results: send the image as a file (📎 → File) so it keeps its full resolution.\n\n"
    + DISCLAIMER
)


def help_text(bot_username: str) -> str:
    return (
        "How to use HematoVision:\n"
        "• Send a photo of a stained blood smear or a single cell.\n"
        "• Sending it as a file (📎 → File) keeps the original resolution: this works best.\n"
        "• Accepted: JPEG, PNG, WebP, TIFF, HEIC (iPhone) up to 20 MB.\n"
        "• I reply with each cell's label and confidence; photos sent together as an album get "
        "one answer for all of them.\n"
        f"• In a group, put @{bot_username} in the photo's caption or send it as a reply to "
        "one of my messages (I see nothing else there).\n\n"
        "Cases: /case REF opens (or switches to) a case; your next photos join it. Without a case "
        "they go to today's automatic case.\n"
        "Commands: /case REF, /history, /export REF, /wbc COUNT (the analyser's white-cell "
        "count, x10^9/L, for the report's absolute counts), /help\n"
        "Reviewers confirm or correct labels with the buttons under each result.\n"
        "Admins: /stats, /retrain, /adapt, /models, /promote VERSION, /rollback, "
        "/group USER_ID NAME, /labname NAME\n\n"
        + DISCLAIMER
    )

PENDING_NEW = (
    "Thank you. HematoVision is for approved laboratory staff: your request has been sent to "
    "the administrators, and I will tell you here as soon as they decide."
)
PENDING = (
    "Your access request is still waiting for an administrator. I will tell you here as soon "
    "as it is decided."
)
NOT_APPROVED = (
    "Sorry, this bot is for approved laboratory staff only. Send /start to ask for access."
)
DENIED = "Sorry, your access request was declined. Please contact your laboratory's administrator."
ADMIN_ONLY = "Sorry, only administrators can do that. The attempt has been logged."
REVIEWER_ONLY = "Only reviewers can confirm or correct labels."
NOT_FOUND = "I cannot find that in your laboratory's records."
STALE_BUTTON = "This button belongs to a message I can no longer change; please use the command."
BAD_REFERENCE = (
    "Please give the laboratory's sample reference: letters, digits and . _ - / only, up to 64 "
    "characters, e.g. /case H24-0193. Never use a patient's name."
)
SLOW_DOWN = (
    "You are sending messages faster than I can take them. Please wait a minute; anything "
    "sent before this message is being handled."
)
PHOTOS_SLOW_DOWN = (
    "That is more than {limit} photos in a minute: this one was not kept. Please send it again "
    "in {seconds} s; the earlier ones are being analysed."
)
DATABASE_BUSY = (
    "⏳ Our database is not answering right now. Your message is kept and I will handle it as "
    "soon as it is back."
)
BUSY = (
    "⏳ Many photos are waiting to be analysed right now, so this one was not kept. Please send "
    "it again in a few minutes; photos already acknowledged will be answered."
)

NOT_STORED = (
    "❌ Sorry, I could not store this photo because our database is unavailable. Please send "
    "it again in a few minutes."
)
RETRAIN_RUNNING = (
    "A retraining is already running (job {job_id}). Please wait for it to finish; its "
    "progress is shown in its message."
)


PHOTO_GONE = ("This photo was deleted after the retention period, so its labels can no longer be "
              "reviewed: nothing was stored.")
BAD_ARGUMENT = ("I cannot read that command's argument: use letters, digits and - _ . (up to "
                "64 characters, no invisible characters). /help lists the commands.")
NOT_A_PHOTO = (
    "I can only analyse images. Please send a photo of a stained blood smear, ideally as a "
    "file (📎 → File) to keep its full resolution. /help explains more."
)

def unknown_command(command: str) -> str:
    return f"I do not know the command {command[:40]}. /help lists the commands."


ACK_PHOTO = (
    "📥 Received, analysing…\n"
    "Tip: sending the image as a file (📎 → File) keeps its full resolution and gives better "
    "results."
)
ACK_DOCUMENT = "📥 Received, analysing…"  # a file, or a photo once the tip was given
ACK_ALBUM = "📥 Album received: analysing its photos… I answer them all together here."
STORAGE_FULL = (
    "⚠️ Our image storage is full, so this photo was not kept or analysed. The administrators "
    "have to free room first (older photos expire by the retention policy); please send it "
    "again later."
)

DOWNLOAD_FAILED = (
    "I could not download this file from Telegram. Please send it again in a moment."
)


WBC_USAGE = ("Usage: /wbc COUNT, the analyser's total white-cell count in x10^9/L for the open "
             "case (for example /wbc 7.2); the report then gives absolute counts.")
WBC_NO_CASE = "No case is open: open one with /case REF, then send /wbc COUNT."
LABNAME_NO_GROUP = "Only a laboratory's admin names it: you belong to no laboratory group."
LABNAME_USAGE = ("Usage: /labname NAME, your laboratory's name as its reports' header gives it "
                 "(for example /labname St Elsewhere Haematology).")


def wbc_recorded(reference: str, value: float) -> str:
    return (f"Case {reference}: white-cell count {value:g} x10^9/L recorded; its report gives "
            "absolute counts.")


def too_large(size: int, limit: int) -> str:
    return (
        f"This file is {size / 1e6:.1f} MB; I can accept files up to {limit / 1e6:.0f} MB. "
        "Please send a smaller image."
    )


def picture_caption(delivery: Delivery) -> str:
    return fit(f"Numbered white cells and red cells (red circles). "
               f"{len(delivery.classified)} white cell(s), {delivery.rbc_count} red cells, "
               f"platelets {platelet_text(delivery.platelet_count)}.", CAPTION_LIMIT)


def refusal_text(reason: str | None) -> str:
    return f"❌ I could not analyse this image.\n{reason}"


def result_text(delivery: Delivery) -> str:
    if delivery.status is SubmissionStatus.REJECTED:
        return refusal_text(delivery.error)
    if delivery.status is SubmissionStatus.FAILED and delivery.error == GAVE_UP:
        # Sending it again would stop the workers again.
        return (f"❌ {GAVE_UP} Please send another photo of the smear rather than this one "
                "again.")
    if delivery.status is SubmissionStatus.FAILED:
        return (
            "❌ Sorry, the analysis of this image failed on our side. It has been recorded; "
            "please send the image again."
        )
    lines = _field_lines(delivery) if delivery.mode == "field" else _cell_lines(delivery)
    lines[:0] = _first_lines(delivery.classified)
    models = f"Model: {delivery.model_version}"
    if delivery.screen_model:
        models += f" · blast screen: {delivery.screen_model}"
    if delivery.red_cell_model:
        models += f" · red cells: {delivery.red_cell_model}"
    trust = [delivery.trust.line()] if delivery.trust is not None and delivery.classified else []
    tail = "\n".join(["", *trust, models, DISCLAIMER])
    # The result is an edit of one message: a crowded field's list is shortened, never the
    # model line or the disclaimer.
    return fit("\n".join(lines), TEXT_LIMIT - telegram_length(tail)) + tail


def _first_lines(cells: list[CellView]) -> list[str]:
    """What a haematologist must see before the differential: blasts named, and cells named
    otherwise that could be blasts."""
    lines = []
    if alert := findings(cell.label for cell in cells).alert():
        lines.append(alert)
    if possible := sum("possible_blast" in cell.reasons for cell in cells):
        more = " more" if lines else ""
        what = "cell could be a blast" if possible == 1 else "cells could be blasts"
        lines.append(f"⚠️ {possible}{more} {what}: review by a haematologist (flagged below)")
    return lines


def album_text(album: list[Delivery]) -> str:
    """One answer for the photos of an album: the differential over all of them, then a line
    per photo (numbered in the order they were sent)."""
    cells = [cell for delivery in album if delivery.status is SubmissionStatus.DONE
             for cell in delivery.classified]
    found = findings(cell.label for cell in cells)
    lines = [*_first_lines(cells), f"🔬 Album of {len(album)} photos"]
    if found.differential:
        total = sum(found.differential.values())
        lines.append(f"Differential over the album ({total} white cells):")
        lines += [f"   {display_name(label)}: {count} ({percent:.0f}%)"
                  for label, count, percent in found.rows()]
    if smudge := found.smudge_line():
        lines.append(smudge)
    lines.append("")
    lines += [f"Photo {number}: {_album_line(delivery)}"
              for number, delivery in enumerate(album, start=1)]
    versions = sorted({d.model_version for d in album if d.model_version})
    versions += sorted({f"blast screen: {d.screen_model}" for d in album if d.screen_model})
    # The photos of an album are answered together: the last one's trust is the laboratory's.
    trusts = [d.trust.line() for d in album if d.trust is not None and d.classified][-1:]
    tail = "\n".join(["", *trusts, f"Model: {', '.join(versions) or '-'}", DISCLAIMER])
    return fit("\n".join(lines), TEXT_LIMIT - telegram_length(tail)) + tail


def _album_line(delivery: Delivery) -> str:
    if delivery.status is SubmissionStatus.REJECTED:
        return f"❌ not analysed: {' '.join((delivery.error or '').split())}"
    if delivery.status is SubmissionStatus.FAILED:
        return "❌ the analysis failed on our side; please send this photo again."
    cells = delivery.classified
    if delivery.mode == "field":
        counts: dict[str, int] = {}
        for cell in cells:
            counts[cell.label or ""] = counts.get(cell.label or "", 0) + 1
        named = ", ".join(f"{display_name(label)} {count}"
                          for label, count in in_clinical_order(counts))
        flag = "  ⚠️ please review" if any(c.review for c in cells) else ""
        return (f"field: {len(cells)} white cell(s){f' ({named})' if named else ''}, "
                f"{delivery.rbc_count} red cells, platelets "
                f"{platelet_text(delivery.platelet_count)}{flag}")
    return "; ".join(_label_line(cell) for cell in cells) or "no cell recognised."


def album_caption(number: int, delivery: Delivery) -> str:
    return fit(f"Photo {number}: {_album_line(delivery)}", CAPTION_LIMIT)


def _label_line(cell: CellView) -> str:
    text = f"{display_name(cell.label or '')}: {confidence_text(cell.confidence, cell.reasons)}"
    if flagged_by_model(cell.review, cell.reasons):
        text += "  ⚠️ please review"
        if why := reasons_in_words(r for r in cell.reasons if r not in TRUST_REASONS):
            text += f": {'; '.join(why)}"
    elif cell.review:
        # Only the laboratory's trust asks for it (the reply's trust line says why): quieter
        # than the model's own doubt, which must stand out among them.
        text += "  · to confirm"
    return text


def _alternatives(cell: CellView) -> str:
    if CONFIDENCE_WITHHELD.intersection(cell.reasons):
        return ", ".join(display_name(str(alt["label"])) for alt in cell.top3[1:])
    # A runner-up that would read "0.0%" says nothing, and "next: Blast 0.0%" under a sure
    # neutrophil (the blast screen's columns rank next when every other class is nearer 0)
    # alarms for nothing.
    shown = [(str(alt["label"]), confidence_text(float(alt["confidence"]), cell.reasons))
             for alt in cell.top3[1:]]
    return ", ".join(f"{display_name(label)} {text}" for label, text in shown
                     if text != confidence_text(0.0, ()))


def _cell_lines(delivery: Delivery) -> list[str]:
    cells = delivery.classified
    if not cells:
        return ["No cells recognised in this image."]
    lines = ["🔬 Result"]
    for number, cell in enumerate(cells, start=1):
        prefix = f"Cell {number}: " if len(cells) > 1 else ""
        lines.append(prefix + _label_line(cell))
        if cell.label == "not_recognised":
            lines.append("   This does not look like a stained blood cell.")
        elif alternatives := _alternatives(cell):
            lines.append(f"   next: {alternatives}")
    return lines


def _field_lines(delivery: Delivery) -> list[str]:
    cells = delivery.classified
    lines = ["🔬 Field analysis",
             f"White cells: {len(cells)} · Red cells: {delivery.rbc_count} · "
             f"Platelets: {platelet_text(delivery.platelet_count)}"]
    if not cells:
        lines.append("No white cell found in this field.")
        return lines
    found = findings(cell.label for cell in cells)
    if found.differential:
        lines.append("Differential:")
        lines += [f"   {display_name(label)}: {count} ({percent:.0f}%)"
                  for label, count, percent in found.rows()]
    if smudge := found.smudge_line():
        lines.append(smudge)
    lines.append("Cells (numbered as in the picture):")
    lines += [f"   {n}. {_label_line(cell)}" for n, cell in enumerate(cells, start=1)]
    return lines


def access_request(member: Member) -> str:
    return (f"🔐 Access request from {member.name} (Telegram id {member.telegram_id}).\n"
            "Approve as a user (sends photos, sees the laboratory's cases), as a reviewer "
            "(may also correct labels), or deny?")


def access_decided(member: Member, admin: Member) -> str:
    if member.role is Role.DENIED:
        return f"⛔ {member.name} was denied by {admin.name}."
    return f"✅ {member.name} approved as {member.role.value} by {admin.name}."


def access_granted(member: Member) -> str:
    extra = " You can also confirm and correct labels." if member.role is not Role.USER else ""
    return f"✅ Your access was approved ({member.role.value}).{extra}\n\n" + WELCOME


def group_assigned(member: Member, typed: str) -> str:
    text = f"{member.name} is now in laboratory group '{member.group_name}'."
    if typed.strip() != member.group_name:
        # Group names are kept in lower case, so that "LabB" and "labb" are one laboratory.
        text += f" (Group names are lower case: '{typed.strip()[:40]}' is '{member.group_name}'.)"
    return text


def _counts_line(counts: dict[str, int]) -> str:
    found = of_counts(counts)
    smudge = f"; smudge cells {found.smudge}" if found.smudge else ""
    return found.summary() + smudge


def case_text(detail: CaseDetail, created: bool = False) -> str:
    head = "📂 New case" if created else "📂 Case"
    lines = [f"{head} {detail.reference} (group {detail.group}, opened "
             f"{detail.created_at:%Y-%m-%d %H:%M} UTC by {detail.owner})"]
    if created:
        lines.append("Your next photos will be added to this case.")
    if not detail.photos:
        lines.append("No photos yet.")
        return "\n".join(lines)
    for photo in detail.photos:
        when = f"Photo {photo.number} ({photo.received_at:%m-%d %H:%M})"
        if photo.status is SubmissionStatus.REJECTED:
            # The reason the reply gave, in its first sentence: a cat photo and a blurred
            # field are not both "no white cells".
            lines.append(f"{when}: ❌ not analysed: {photo.rejection}")
            continue
        status = "" if photo.status is SubmissionStatus.DONE else f" [{photo.status.value}]"
        why = f" ({reasons_tally(photo.flag_reasons)})" if photo.flag_reasons else ""
        flags = f" · ⚠️ {photo.flagged} to review{why}" if photo.flagged else ""
        reviewed = f" · ✔️ {photo.reviewed} reviewed" if photo.reviewed else ""
        lines.append(f"{when}{status}: {_counts_line(photo.counts)}{flags}{reviewed}")
    totals = detail.totals
    found = of_counts(totals)
    if alert := found.alert():
        lines.insert(1, alert)
    lines += ["", f"Case total: {sum(found.differential.values())} white cells: "
                  f"{_counts_line(totals)}",
              f"Red cells: {detail.rbc_total} · Platelets: "
              f"{platelet_text(detail.platelet_total)}"]
    if detail.corrections:
        lines.append("Corrections:")
        lines += [f"   photo {c.photo_number} cell {c.cell_number}: "
                  f"{display_name(c.previous_label or '?')} → {expert_name(c.label)} "
                  f"by {c.reviewer} ({c.at:%m-%d %H:%M})" for c in detail.corrections]
    return "\n".join(lines)


def history_text(page: HistoryPage) -> str:
    if not page.lines:
        return "No cases yet. Send a photo, or open a case with /case REF."
    lines = [f"🗂 Cases (page {page.page + 1} of {page.pages}), most recent first:"]
    lines += [f"• {line.reference}: {line.photos} photo(s), {line.white_cells} white cell(s)"
              + (f", {line.corrections} correction(s)" if line.corrections else "")
              + f", opened {line.created_at:%Y-%m-%d}" for line in page.lines]
    return "\n".join(lines)


def review_menu(cells: list[ReviewableCell]) -> str:
    if not cells:
        return "This result has no classified cells to correct."
    return "Which cell is wrong? (numbered as in the result)"


def class_menu(cell: ReviewableCell) -> str:
    if cell.expert_label is not None:
        said = f"an expert labelled it {expert_name(cell.expert_label)}"
    else:
        said = f"the bot said {display_name(cell.label or '?')}"
    return f"Cell {cell.number}: {said}. What is it?"


def corrected(result: Reviewed, reviewer: Member) -> str:
    then = ("it no longer counts in the differential" if result.label == NOT_RECOGNISED
            else "it will be used in the next retraining")
    return (f"✏️ Cell {result.cell_number}: {display_name(result.previous_label or '?')} → "
            f"{expert_name(result.label)}, by {reviewer.name}. Stored; {then}.")


def correction_cancelled(cell: ReviewableCell) -> str:
    return f"Cell {cell.number}: correction cancelled; nothing changed."


def confirmed(count: int, reviewer: Member) -> str:
    if not count:
        # A second press: say so rather than "0 accepted", which reads as a failure.
        return ("Every label of this result was already confirmed or corrected; nothing "
                "changed.")
    return f"✅ {count} label(s) of this result confirmed by {reviewer.name}."


def models_text(entries: list[ModelEntry], screen: ScreenCard | None = None) -> str:
    """The registry's versions, and the model that screens every cell for blasts."""
    if not entries:
        return "No model versions are registered yet."
    lines = ["🧠 Model versions (newest first):"]
    for entry in entries:
        accuracy = f"test accuracy {entry.accuracy:.2%}" if entry.accuracy is not None else ""
        marker = "▶️ " if entry.status.value == "active" else "   "
        lines.append(f"{marker}{entry.ref.version}: {entry.status.value}"
                     + (f" for {entry.group}" if entry.group else "")
                     + (f", {accuracy}" if accuracy else "")
                     + (f", from {entry.parent_version}" if entry.parent_version else ""))
        if entry.sources:
            lines.append(f"      learnt from: {', '.join(entry.sources)}")
        if entry.gate and not entry.gate.get("passed", True):
            lines.append(f"      gate: {'; '.join(entry.gate.get('reasons', []))}")
    if screen is not None:
        lines.append(f"🔎 Every cell is also screened for blasts by "
                     f"{screen.version}, learnt from: "
                     f"{', '.join(screen.sources)}")
    lines.append("/promote VERSION or /rollback to switch.")
    return "\n".join(lines)


def _eta(seconds: float | None) -> str:
    return "" if seconds is None else f", ETA {timedelta(seconds=round(seconds))}"


def _expert_cells_line(counts: dict[str, int] | None) -> list[str]:
    # Absent from jobs that ended before it was recorded, and empty without corrections.
    if not counts or not counts["of"]:
        return []
    return [f"Expert-labelled cells given the expert's label: {counts['candidate']} of "
            f"{counts['of']} (active model: {counts['active']})."]


def adaptation_proposed(proposal: Proposal) -> str:
    return (f"📚 {proposal.group}: your experts have reviewed {proposal.new_cells} cells since "
            f"the laboratory's last own model version, and kept the bot's first answer for "
            f"{proposal.agreement.share:.0%} of them.\n"
            "/adapt makes a version of the model for your laboratory from its experts' cells: "
            "it learns from three quarters of them and replaces the version serving you only "
            "if it names the other quarter better (you see both). /stats shows the agreement "
            "per week and per class.")


STATS_NO_GROUP = "No such laboratory (owners: /stats NAME; admins: /stats for your own)."


def standing_text(found: Standing) -> str:
    """A laboratory's agreement with the bot and the trust of its serving version, for its
    admins."""
    lines = [f"📈 {found.group}: served by {found.version or '-'}",
             f"Your experts kept the bot's first answer for {found.agreement.overall.text()} "
             "reviewed cells.", *breakdown(found), found.trust.line()]
    return "\n".join(lines)


def kept_candidate(report: JobReport) -> bool:
    """A finished job whose candidate the gate kept back: its admin decides."""
    return (report.status is JobStatus.DONE and report.outcome is not None
            and not report.outcome["promoted"])


def candidate_decided(version: str, action: str, by: Member) -> str:
    if action == "promote":
        return (f"▶️ {version} promoted by {by.name} and now active; workers switch on their "
                "next photo. /rollback goes back.")
    return f"🗑 {version} discarded by {by.name}; the active model keeps serving."


def job_text(report: JobReport) -> str:
    head = f"🏋️ Retraining job {report.job_id}"
    if report.status is JobStatus.FAILED:
        return f"{head} failed: {report.error}"
    if report.status is JobStatus.DONE and report.outcome:
        gate = report.outcome["gate"]
        lines = [f"{head} finished: candidate {report.outcome['version']}",
                 f"Test accuracy {gate['candidate_accuracy']:.2%} vs active "
                 f"{gate['baseline_accuracy']:.2%} (same images); "
                 f"{report.outcome['expert_examples']} expert-labelled cell(s), "
                 f"{report.outcome['replay_examples']} replayed.",
                 *_expert_cells_line(report.outcome.get("expert_cells")),
                 *([f"Learnt: {adapted}."] if (adapted := report.outcome.get("adapted")) else []),
                 *[f"epoch {h['epoch']}: validation accuracy {h['val_accuracy']:.2%}"
                   for h in report.outcome.get("history", [])],
                 f"Took {report.outcome['minutes']:.1f} min."]
        if report.outcome["promoted"] and report.outcome.get("laboratory"):
            lines.append(f"✅ Passed the gate and now serves {report.outcome['laboratory']} "
                         "(other laboratories keep theirs). /rollback goes back.")
        elif report.outcome["promoted"]:
            lines.append("✅ Passed the gate and is now active. /rollback goes back.")
        else:
            lines.append("⏸ Not promoted: it stays a candidate, and the active model keeps "
                         "serving. Worse than the active model:")
            lines += [f"   • {reason}" for reason in gate["reasons"]]
            if gate.get("better"):
                lines.append("Better:")
                lines += [f"   • {what}" for what in gate["better"]]
            lines.append("Promote it anyway, or discard it, with the buttons below.")
        return "\n".join(lines)
    p = report.progress
    if report.stage == "training":
        detail = (f"epoch {p.get('epoch')}/{p.get('epochs')}, step {p.get('step')}/"
                  f"{p.get('steps')}, loss {p.get('loss')}{_eta(p.get('eta_seconds'))}")
    elif report.stage == "validated":
        detail = (f"epoch {p.get('epoch')}/{p.get('epochs')} done, validation accuracy "
                  f"{float(p.get('val_accuracy', 0)):.2%}{_eta(p.get('eta_seconds'))}")
    elif report.stage == "data ready":
        detail = (f"{p.get('expert_examples')} expert-labelled cell(s), "
                  f"{p.get('replay_examples')} replayed, {p.get('test_images')} test images")
    else:  # adapting, evaluating: the job says where it is in words
        detail = str(p.get("detail") or "")
    return f"{head}: {report.stage}" + (f" ({detail})" if detail else "") + "…"


RETRAIN_QUEUED = "🏋️ Retraining job {job_id} queued; progress will appear here."
ADAPT_QUEUED = ("🏋️ Retraining job {job_id} queued: a version of the model adapted to "
                "{group}'s expert-labelled cells, for {group} only; progress will appear here.")
ADAPT_NO_GROUP = "You belong to no laboratory group: /group puts you in one first."
