// Airport suggestions for the From and To fields: as the traveller types a city, a name or a code, the
// airports matching it (ListAirports) are offered in the field's list; choosing one puts its code in.
import { escape } from "./format.js";
import { client, showError } from "./page.js";

/** Airports offered per field: enough to pick from, few enough to read. */
const SUGGESTED = 8;
/** Typing pauses this long before the server is asked, so a word typed quickly is one call. */
const PAUSE_MS = 150;

/** Wires the suggestions of every airport field of the form (inputs with a `list`). */
export function setUpAirportSuggestions(form: HTMLFormElement): void {
  for (const input of form.querySelectorAll<HTMLInputElement>("input[list]")) {
    const list = document.getElementById(input.getAttribute("list") ?? "");
    if (list === null) continue;
    let pending: number | undefined;
    let asked = "";
    input.addEventListener("input", () => {
      window.clearTimeout(pending);
      const query = input.value.trim();
      // A code already chosen (three capitals) needs no suggestions; one letter matches too much.
      if (query.length < 2 || /^[A-Z]{3}$/.test(query) || query === asked) return;
      pending = window.setTimeout(() => void suggest(query), PAUSE_MS);
    });

    async function suggest(query: string): Promise<void> {
      asked = query;
      try {
        const { airports } = await client.airport.listAirports({ query, pageSize: SUGGESTED });
        // A later query may have answered first: only the field's current text decides.
        if (input.value.trim() !== query) return;
        list!.innerHTML = airports
          .map((airport) => `<option value="${escape(airport.code)}">${escape(`${airport.city} · ${airport.name}`)}</option>`)
          .join("");
      } catch (error) {
        showError(error);
      }
    }
  }
}
