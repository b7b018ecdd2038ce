"""What a set of cell labels tells a laboratory: blasts first, smudge cells beside the
differential."""

from vision.findings import findings, of_counts


def test_blasts_raise_the_alert_counted_among_the_white_cells_only() -> None:
    found = findings(["blast", "promonocyte", "neutrophil", "lymphocyte", "erythroblast",
                      "platelet", "not_recognised", None])
    assert found.blasts == 2 and found.white_cells == 4
    assert found.alert() == ("🚨 Blasts seen: 2 of 4 white cells — urgent review by a "
                             "haematologist")


def test_no_blast_no_alert() -> None:
    assert findings(["neutrophil", "monocyte", "ig"]).alert() is None
    assert findings([]).alert() is None


def test_smudge_cells_are_counted_beside_the_differential_not_in_it() -> None:
    found = findings(["smudge", "smudge", "neutrophil", "lymphocyte"])
    assert found.smudge == 2 and "smudge" not in found.differential
    assert [(label, count) for label, count, _ in found.rows()] == [("neutrophil", 1),
                                                                    ("lymphocyte", 1)]
    assert found.smudge_line() == "Smudge cells: 2 (not in the differential)"
    assert findings(["neutrophil"]).smudge_line() is None


def test_the_differential_lists_blasts_first_with_their_percentage() -> None:
    found = findings(["neutrophil", "blast", "neutrophil", "reactive_lymphocyte"])
    assert found.rows() == [("blast", 1, 25.0), ("neutrophil", 2, 50.0),
                            ("reactive_lymphocyte", 1, 25.0)]
    assert found.summary() == "Blast 1 (25%), Neutrophil 2 (50%), Reactive lymphocyte 1 (25%)"


def test_counted_labels_give_the_same_findings_as_the_labels() -> None:
    labels = ["blast", "smudge", "neutrophil", "neutrophil", "not_recognised"]
    assert of_counts({"blast": 1, "smudge": 1, "neutrophil": 2, "not_recognised": 1}) \
        == findings(labels)
