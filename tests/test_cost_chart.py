"""The quality-against-cost chart the report and its Distillation section share."""

from lab.evaluation.cost_chart import Point, cost_quality_svg, html_table


def test_one_point_per_arm_with_its_interval_the_target_and_no_urls():
    points = [Point("few-shot", 0.008, 0.6, 0.5, 0.7, "#2563eb"), Point("tune <a>", None, 0.4, None, None)]
    svg = cost_quality_svg(points, 0.8, "time", "label_accuracy", "quality versus cost")
    assert svg.startswith("<svg") and svg.count("<circle") == 2 and svg.count('stroke-width="2"') == 2
    assert "target 0.80" in svg and "few-shot 0.60" in svg and "tune &lt;a&gt; 0.40 (cost n/a)" in svg
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    ticks = [t for t in svg.split("<text") if 'font-size="11"' in t and "text-anchor" in t]
    assert any('text-anchor="end">0.0092' in t for t in ticks)  # the last cost tick ends inside the frame


def test_overlapping_labels_are_nudged_apart():
    points = [Point("a", 1.0, 0.5, 0.4, 0.6), Point("b", 1.0, 0.5, 0.4, 0.6)]
    svg = cost_quality_svg(points, None, "tokens", "f1", "x")
    ys = [float(part.split('y="')[1].split('"')[0]) for part in svg.split("<text")[1:] if 'font-size="12" fill' in part]
    assert len(ys) == 2 and abs(ys[0] - ys[1]) >= 13


def test_table_escapes_its_head_and_right_aligns_numbers():
    html = html_table(["a<b", "n"], [["x", "3"]], {1})
    assert "<th>a&lt;b</th>" in html and '<td class="num">3</td>' in html
