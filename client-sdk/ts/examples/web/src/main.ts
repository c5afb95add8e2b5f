// The Aerobook booking page: search (in one cabin or any), live availability, seat map, sign-in, the
// waiting room of a flight in a flash sale, hold with countdown, simulated payment, confirmation and
// cancellation, all through @aerobook/sdk over gRPC-web. Each part is a module of its own:
//   page.ts      the API client, the page's elements, errors
//   account.ts   the account in the top bar and the sign-in dialog
//   search.ts    the search form and its results
//   seat-map.ts  the chosen flight: live availability, seat map, passengers
//   booking.ts   hold, waiting room, payment, confirmation, cancellation
//   trip.ts      the trip on screen; flights.ts and format.ts, how a flight and the API's values read
//   airports.ts  airport suggestions for the From and To fields; passengers.ts, the party's fields
//   return-trip.ts, trip-booking.ts  a return trip: both legs side by side, one hold and one payment,
//                and a change of one of its flights with its amount due
import { setUpAirportSuggestions } from "./airports.js";
import { renderAccount, setUpSignIn } from "./account.js";
import { ui } from "./page.js";
import { setUpSearch } from "./search.js";

setUpSignIn();
setUpSearch();
setUpAirportSuggestions(ui.searchForm);
void renderAccount();
