"""Homework checking: compare a student's answers (a small YAML file) with archcalc's figures.

    sheet = load_answers("answers.yaml")        # archcalc.homework.answers
    result = check(report, sheet)               # archcalc.homework.check
    result.ok, result.to_json(), result.grade_rows("s123")
"""
from archcalc.homework.answers import AnswerSheet, load_answers, parse_answers
from archcalc.homework.check import CheckResult, check

__all__ = ["AnswerSheet", "CheckResult", "check", "load_answers", "parse_answers"]
