// Behavioural model of the Lattice ECP5 TRELLIS_FF (a slice flip-flop with its clock, clock
// enable and set/reset multiplexers, as Yosys's ECP5 flow instantiates it), for simulating
// post-synthesis netlists: the function of Yosys's model in cells_sim_ecp5.v (every
// parameter value it knows: CEMUX "1"/"0"/"INV"/signal, LSRMUX and CLKMUX inversion, SRMODE
// "ASYNC" or synchronous "LSR_OVER_CE", REGSET "SET"/"RESET", LSRMODE "PRLD" loading M), in
// one always block without generate blocks: Icarus elaborates a generate scope per instance,
// and a netlist holds tens of thousands of these (tiny's: 25k, most of its compile time).
// tests/test_netlist_cells.py checks it against Yosys's model for every parameter setting.
`timescale 1ns / 1ps
module TRELLIS_FF(input CLK, LSR, CE, DI, M, output reg Q);
	parameter GSR = "ENABLED";
	parameter [127:0] CEMUX = "1";
	parameter CLKMUX = "CLK";
	parameter LSRMUX = "LSR";
	parameter SRMODE = "LSR_OVER_CE";
	parameter REGSET = "RESET";
	parameter [127:0] LSRMODE = "LSR";

	localparam CE_ONE = CEMUX == "1";
	localparam CE_ZERO = CEMUX == "0";
	localparam CE_INV = CEMUX == "INV";
	localparam LSR_INV = LSRMUX == "INV";
	localparam CLK_INV = CLKMUX == "INV";
	localparam ASYNC = SRMODE == "ASYNC";
	localparam PRELOAD = LSRMODE == "PRLD";
	localparam SET = REGSET == "SET";

	wire ce = CE_ONE ? 1'b1 : CE_ZERO ? 1'b0 : CE_INV ? ~CE : CE;
	wire lsr = LSR_INV ? ~LSR : LSR;
	wire clk = CLK_INV ? ~CLK : CLK;
	wire srval = PRELOAD ? M : SET;
	// the asynchronous set/reset's event: the set/reset itself, or a constant 0 (no event)
	wire async_lsr = ASYNC ? lsr : 1'b0;

	initial Q = srval;

	always @(posedge clk, posedge async_lsr)
		if (lsr)
			Q <= srval;
		else if (ce)
			Q <= DI;
endmodule
