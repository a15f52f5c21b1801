"""The study book's stylesheet: screen and A4 print in one, inlined into ``study.html``.

Print rules follow :data:`cifarkit.report.render.REPORT_CSS`: figures never wider than
the page, never taller than one and never split; headings kept with what follows;
long text lines wrapped; wide tables set small with cells that wrap (the book has no
script, so nothing zooms a table). Page numbers come from ``@page`` margin boxes.
"""

BOOK_CSS = """
@page { size: A4; margin: 15mm 15mm 16mm 15mm;
  @bottom-right { content: "page " counter(page); font: 8pt "DejaVu Sans", Arial, sans-serif; color: #666; } }
@page :first { @bottom-right { content: none; } }
html { background: #fff; }
body { font-family: "DejaVu Serif", Georgia, serif; font-size: 10pt; line-height: 1.45; color: #1b1b1b;
  max-width: 186mm; margin: 0 auto; padding: 10px 14px; }
h1, h2, h3, h4, h5, figcaption, .kicker, .headline, table, nav, .lof {
  font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; }
h1, h2, h3, h4, h5 { break-after: avoid; page-break-after: avoid; line-height: 1.25; color: #102a43; }
h1 { font-size: 24pt; margin: 6mm 0 4mm 0; }
h2 { font-size: 15pt; margin: 16pt 0 8pt 0; padding-bottom: 3pt; border-bottom: 1.5px solid #486581; }
h3 { font-size: 12.5pt; margin: 14pt 0 6pt 0; }
h4 { font-size: 11pt; margin: 12pt 0 4pt 0; }
h5 { font-size: 10pt; margin: 8pt 0 3pt 0; }
.num { color: #627d98; margin-right: 0.25em; }
p { margin: 4pt 0 6pt 0; }
a { color: #0b4f8a; text-decoration: none; }
code, pre { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; }
code { font-size: 0.9em; overflow-wrap: anywhere; }
img { max-width: 100%; height: auto; }

/* title page, summary, contents */
.title-page { break-after: page; page-break-after: always; padding-top: 45mm; }
.kicker { text-transform: uppercase; letter-spacing: 0.12em; color: #627d98; font-size: 10pt; margin: 0; }
.headline { font-size: 13pt; margin: 4mm 0 10mm 0; padding: 4mm 5mm; background: #f0f4f8;
  border-left: 4px solid #2f6f4f; }
.summary-page { break-after: page; page-break-after: always; }
.summary p { margin: 0 0 7pt 0; }
.front { break-after: page; page-break-after: always; }
.toc ul, .lof ul { list-style: none; padding-left: 0; margin: 0; }
.toc li { margin: 1.5pt 0; font-size: 10pt; }
.toc li.toc0 { font-weight: 600; margin-top: 5pt; }
.toc li.toc1 { padding-left: 6mm; }
.toc li.toc2 { padding-left: 12mm; font-size: 9pt; }
.lof li { font-size: 9pt; margin: 1.5pt 0; padding-left: 6mm; text-indent: -6mm; }
.chapter > h2:first-child { break-before: page; page-break-before: always; margin-top: 0; }
.refs-chapter > h2:first-child { break-before: auto; page-break-before: auto; margin-top: 24pt; }

/* tables the book writes */
table.kv { border-collapse: collapse; width: 100%; font-size: 9pt; margin: 4pt 0 8pt 0; }
table.kv th { text-align: left; font-weight: 600; vertical-align: top; white-space: nowrap; width: 1%;
  padding: 2pt 10pt 2pt 0; color: #334e68; }
table.kv td { vertical-align: top; padding: 2pt 0; overflow-wrap: anywhere; }
table.kv tr { border-bottom: 1px solid #e4e7eb; break-inside: avoid; }
table.facts { font-size: 10pt; }
table.grid { border-collapse: collapse; font-size: 8.5pt; margin: 4pt 0 8pt 0; }
table.grid th, table.grid td { border-bottom: 1px solid #d9e2ec; padding: 1.5pt 6pt; text-align: left;
  vertical-align: top; }
table.counts td { text-align: right; }
table.nbs td.params { font-family: "DejaVu Sans Mono", monospace; font-size: 7pt; overflow-wrap: anywhere; }
ol.limits li, ol.refs li { margin: 0 0 6pt 0; }
ol.refs { list-style: none; padding-left: 0; }
ol.refs li { padding-left: 8mm; text-indent: -8mm; break-inside: avoid; }
.ref-label { font-weight: 600; }
pre.command { white-space: pre-wrap; overflow-wrap: anywhere; background: #f0f4f8; padding: 6pt 8pt;
  font-size: 8.5pt; border: 1px solid #bcccdc; }

/* the notebooks' results */
figure { margin: 6pt 0 12pt 0; break-inside: avoid; page-break-inside: avoid; }
figure.fig img { display: block; margin: 0 auto; max-width: 100%; max-height: 140mm; width: auto;
  height: auto; break-inside: avoid; }
figcaption { font-size: 8.5pt; color: #334e68; margin-top: 3pt; }
figure.fig figcaption { text-align: center; }
figure.tbl figcaption { margin: 0 0 3pt 0; }
.keep { break-inside: avoid; page-break-inside: avoid; }
.out { max-width: 100%; overflow: visible; }
.out table { border-collapse: collapse; border: none; font-size: 7.5pt; margin: 0; table-layout: auto;
  max-width: 100%; }
.out th, .out td { border: none; border-bottom: 1px solid #d9e2ec; padding: 1pt 4pt; text-align: right;
  vertical-align: top; overflow-wrap: break-word; }
figure.wide .out table { font-size: 6.5pt; }
figure.wider .out table { font-size: 5.5pt; }
figure.wide .out th, figure.wider .out th, figure.wide .out td, figure.wider .out td { padding: 1pt 2pt; }
.out thead th { border-bottom: 1px solid #486581; }
.out tr { break-inside: avoid; }
.out pre, pre.out-text { white-space: pre-wrap !important; overflow-wrap: anywhere; overflow: visible !important;
  font-size: 7pt !important; line-height: 1.25 !important; background: #f7f9fb; padding: 3pt 5pt; margin: 3pt 0 6pt 0; }
.prose ul, .prose ol { margin: 2pt 0 6pt 0; }
@media print {
  body { max-width: none; padding: 0; margin: 0; }
  a { color: #0b4f8a; }
}
"""
