"""The page's style sheet: readable from 360 px to a wide screen, no sideways page scroll.

Wide things scroll inside their own box (tables, long equations); figures are grids of
single panels that reflow; the table of contents is a side column on wide screens and a
bar that stays on top of narrow ones.
"""

STYLE = """
*, *::before, *::after { box-sizing: border-box; }
html { scroll-padding-top: 1rem; }
body { font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1d2330; background: #fbfbfd; }
.layout { display: grid; grid-template-columns: 13.5rem minmax(0, 1fr); }
main { min-width: 0; max-width: 64rem; padding: 1.2rem 1.6rem 4rem; }
nav { position: sticky; top: 0; align-self: start; max-height: 100vh; overflow-y: auto;
      padding: 1.2rem .6rem 1rem 1rem; font-size: 14px; border-right: 1px solid #e3e7ee; }
nav ul { list-style: none; margin: 0; padding: 0; }
nav > ul > li { margin: .2rem 0 .45rem; }
nav > ul > li > a { font-weight: 600; }
nav ul.claims { margin: .15rem 0 .3rem .6rem; font-size: 12.5px; }
nav ul.claims li { margin: .05rem 0; }
nav a { color: #1f4fa3; text-decoration: none; } nav a:hover { text-decoration: underline; }
.dot { display: inline-block; width: .55em; height: .55em; border-radius: 50%;
       vertical-align: middle; }
.dot.confirmed { background: #22a05a; } .dot.refuted { background: #e0702a; }
.dot.error { background: #b91c1c; }
h1 { font-size: 1.7rem; margin: .1rem 0 .2rem; }
h2 { margin: 2.4rem 0 .8rem; border-bottom: 2px solid #e3e7ee; padding-bottom: .3rem;
     font-size: 1.35rem; }
h3 { margin: 1.4rem 0 .4rem; font-size: 1.05rem; }
p { margin: .45rem 0; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .88em; }
code { background: #eef1f5; padding: .05rem .3rem; border-radius: .25rem;
       overflow-wrap: anywhere; }
pre { background: #eef1f5; padding: .6rem .8rem; border-radius: .4rem; overflow-x: auto; }
pre code { padding: 0; }
.muted { color: #5b6474; }
math { font-family: "STIX Two Math", "Cambria Math", "Latin Modern Math",
       "DejaVu Math TeX Gyre", math; font-size: 1.07em; }
math .wrong { background: #fde0dc; color: #9f1239; border-radius: 3px; }
math .changed { background: #c9f2d7; color: #065f46; border-radius: 3px; }
.eq { overflow-x: auto; overflow-y: hidden; padding: .25rem 0; max-width: 100%; }
math.display { math-style: normal; font-size: 1.12em; }
.eq { white-space: nowrap; }
#verdict { margin-top: 1rem; }
.verdict-box { background: white; border: 1px solid #d9dee8; border-left: 5px solid #1f4fa3;
               border-radius: .5rem; padding: .4rem 1.2rem .8rem; }
.verdict-box h2 { margin: .6rem 0 .5rem; border: 0; padding: 0; font-size: 1.3rem; }
.answers { padding-left: 1.1rem; margin: .4rem 0; }
.answers > li { margin: .45rem 0; }
.answers ul { margin: .3rem 0; padding-left: 1.2rem; }
.tally { font-weight: 600; margin-top: .6rem; }
.fix { background: white; border: 1px solid #e3e7ee; border-radius: .5rem;
       padding: .5rem 1rem .7rem; margin: .8rem 0; }
.fix-head { font-weight: 600; }
.pair { display: grid; grid-template-columns: 10rem minmax(0, 1fr); gap: .2rem 1rem;
        align-items: center; }
.pair .side { font-weight: 600; margin: .2rem 0; }
.pair .side span { font-weight: normal; font-size: 13.5px; color: #4b5563; }
.derivation { border-top: 1px dashed #e3e7ee; padding-top: .4rem; }
.aside { background: #f1f5fd; border: 1px solid #d5e0f5; border-radius: .5rem;
         padding: .6rem .9rem; }
.scroll { overflow-x: auto; max-width: 100%; margin: .8rem 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; background: white; }
th, td { border-bottom: 1px solid #e3e7ee; padding: .35rem .5rem; text-align: left;
         vertical-align: top; }
th { background: #f1f4f8; font-weight: 600; white-space: nowrap; }
table.summary td:first-child { min-width: 11rem; }
.verdict { font-weight: 600; padding: .05rem .45rem; border-radius: .3rem; font-size: 13px;
           white-space: nowrap; }
.verdict.confirmed { background: #dcf3e3; color: #14532d; }
.verdict.refuted { background: #fde7d9; color: #9a3412; }
.verdict.error { background: #fde2e2; color: #7f1d1d; }
.card { background: white; border: 1px solid #e3e7ee; border-left: 4px solid #22a05a;
        border-radius: .5rem; padding: .5rem 1rem .4rem; margin: 1rem 0; }
.card.refuted { border-left-color: #e0702a; } .card.error { border-left-color: #b91c1c; }
.card-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: .2rem .6rem; }
.card-head h3 { margin: .3rem 0; }
.claim-id { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px;
            color: #5b6474; }
.card .statement { font-size: 1.02rem; }
details { margin: .4rem 0 .3rem; font-size: 14px; }
summary { cursor: pointer; color: #1f4fa3; }
dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: .2rem .8rem; }
dt { color: #5b6474; } dd { margin: 0; overflow-wrap: anywhere; }
figure { margin: 1rem 0 1.4rem; background: white; border: 1px solid #e3e7ee;
         border-radius: .5rem; padding: .7rem; }
.panels { display: grid; gap: .6rem; justify-items: center; }
.panels.many { grid-template-columns: repeat(auto-fit, minmax(min(100%, 21rem), 1fr)); }
.panels img { display: block; width: 100%; height: auto; }
.panels.one img { max-width: 34rem; }
figcaption { color: #374151; font-size: 14px; margin-top: .5rem; }
.legend { list-style: none; display: flex; flex-wrap: wrap; gap: .2rem 1.1rem; padding: 0;
          margin: .5rem 0 0; font-size: 13.5px; }
.key { display: inline-block; width: 1.5em; margin-right: .4em; vertical-align: middle; }
.key.line { border-top: 3px solid var(--c); }
.key.dash { border-top: 2px dashed var(--c); }
.key.bar { height: .8em; background: var(--c); }
.key.dot, .key.hollow { width: .8em; height: .8em; border-radius: 50%; }
.key.dot { background: var(--c); } .key.hollow { border: 2px solid var(--c); }
.recorded { background: #fff8e6; border: 1px solid #f3dfa6; border-radius: .4rem;
            padding: .4rem .7rem; }
ul.notes { font-size: 14px; color: #4b5563; }
@media (max-width: 1000px) {
  html { scroll-padding-top: 3.4rem; }
  .layout { display: block; }
  nav { max-height: none; overflow-x: auto; overflow-y: hidden; white-space: nowrap;
        border-right: 0; border-bottom: 1px solid #e3e7ee; background: #fbfbfd; z-index: 2;
        padding: .55rem .8rem; }
  nav > ul > li { display: inline-block; margin: 0 .9rem 0 0; }
  nav ul.claims { display: none; }
  main { padding: 1rem 1rem 3rem; }
}
@media (max-width: 760px) {
  body { font-size: 15.5px; }
  .pair { grid-template-columns: minmax(0, 1fr); }
  table.summary, table.summary tbody, table.summary tr, table.summary td { display: block; }
  table.summary tr:first-child { display: none; }
  table.summary tr { border-bottom: 1px solid #d9dee8; padding: .4rem 0; }
  table.summary td { border: 0; padding: .15rem .3rem; }
  table.summary td::before { content: attr(data-label); display: block; font-size: 12px;
                             color: #5b6474; font-weight: 600; }
  table.summary td:first-child::before { content: none; }
  table.summary td:nth-child(4) { font-size: 13px; color: #4b5563; }
  math.display { math-style: compact; font-size: 1em; }
  .eq { background: linear-gradient(to left, #eef1f5, white 1.2rem) right / 1.2rem 100% no-repeat;
        padding-right: 1.2rem; }
}
"""
