// Keepstone console: the one script of our own (htmx does the rest). Painting the backup
// window's 7x24 grid with the mouse or a finger, and moving through it with the keyboard.
"use strict";

function setupGrid(grid) {
  const cells = Array.from(grid.querySelectorAll("input[name=window]"));
  const at = (day, hour) => grid.querySelector(`input[data-day="${day}"][data-hour="${hour}"]`);
  let paint = null; // the value being painted while a button is down
  let changed = false;

  const set = (cell, value) => {
    if (cell.checked !== value) { cell.checked = value; changed = true; }
  };
  const finish = () => {
    if (changed) cells[0].dispatchEvent(new Event("change", { bubbles: true }));
    paint = null; changed = false;
  };
  grid.addEventListener("pointerdown", (event) => {
    const cell = event.target.closest("input[name=window]");
    if (!cell || cell.disabled) return;
    event.preventDefault(); // no native toggle: painting decides
    paint = !cell.checked;
    set(cell, paint);
    cell.focus();
    move(cell);
  });
  grid.addEventListener("pointerover", (event) => {
    const cell = event.target.closest("input[name=window]");
    if (paint !== null && cell) set(cell, paint);
  });
  // A finger moving over cells: pointerover does not follow a touch, elementFromPoint does.
  grid.addEventListener("pointermove", (event) => {
    if (paint === null || event.pointerType === "mouse") return;
    const cell = document.elementFromPoint(event.clientX, event.clientY);
    if (cell && cell.matches && cell.matches("input[name=window]")) set(cell, paint);
  });
  document.addEventListener("pointerup", finish);
  grid.addEventListener("click", (event) => {
    if (event.target.matches("input[name=window]") && event.detail > 0) event.preventDefault();
  });

  const fieldset = grid.closest("fieldset");
  for (const button of fieldset ? fieldset.querySelectorAll("button[data-fill]") : []) {
    button.addEventListener("click", () => {
      for (const cell of cells) set(cell, button.dataset.fill === "1");
      finish();
    });
  }

  function move(cell) { // roving tabindex: one cell of the grid is in the tab order
    for (const other of cells) other.tabIndex = -1;
    cell.tabIndex = 0;
    cell.focus();
  }
  grid.addEventListener("keydown", (event) => {
    const cell = event.target.closest("input[name=window]");
    if (!cell) return;
    const steps = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
    const step = steps[event.key];
    if (!step) return;
    event.preventDefault();
    const day = (Number(cell.dataset.day) + step[0] + 7) % 7;
    const hour = (Number(cell.dataset.hour) + step[1] + 24) % 24;
    const next = at(day, hour);
    if (event.shiftKey && !next.disabled) { set(next, cell.checked); finish(); }
    move(next);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const grid of document.querySelectorAll(".window-grid")) setupGrid(grid);
});
