// Behavioural model of the Lattice ECP5 CCU2C (two LUT4s with the carry logic between
// them), for simulating post-synthesis netlists: the function of Yosys's model in
// cells_sim_ecp5.v (half k: S = LUT4(INITk) ^ carry in, carry out = the LUT4's output ? carry
// in : the LUT2 of INITk[3:0] over A and B; INJECT1_k "YES" injects 0 for both), written
// flat, without the four LUT instances per cell that Icarus elaborates one scope each for.
// Each LUT is the same multiplexer tree as Yosys's LUT4 (an unknown select with equal data
// gives the data). tests/test_netlist_cells.py checks it against Yosys's model.
`timescale 1ns / 1ps
module CCU2C(input CIN, A0, B0, C0, D0, A1, B1, C1, D1, output S0, S1, COUT);
	parameter [15:0] INIT0 = 16'h0000;
	parameter [15:0] INIT1 = 16'h0000;
	parameter INJECT1_0 = "YES";
	parameter INJECT1_1 = "YES";

	localparam INJECT0 = INJECT1_0 == "YES";
	localparam INJECT1 = INJECT1_1 == "YES";

	// first half
	wire [7:0] d0 = D0 ? INIT0[15:8] : INIT0[7:0];
	wire [3:0] c0 = C0 ? d0[7:4] : d0[3:0];
	wire [1:0] b0 = B0 ? c0[3:2] : c0[1:0];
	wire lut4_0 = A0 ? b0[1] : b0[0];
	wire [1:0] g0 = B0 ? INIT0[3:2] : INIT0[1:0];
	wire lut2_0 = A0 ? g0[1] : g0[0];
	assign S0 = lut4_0 ^ (INJECT0 ? 1'b0 : CIN);
	wire cout_0 = (~lut4_0 & (INJECT0 ? 1'b0 : lut2_0)) | (lut4_0 & CIN);

	// second half
	wire [7:0] d1 = D1 ? INIT1[15:8] : INIT1[7:0];
	wire [3:0] c1 = C1 ? d1[7:4] : d1[3:0];
	wire [1:0] b1 = B1 ? c1[3:2] : c1[1:0];
	wire lut4_1 = A1 ? b1[1] : b1[0];
	wire [1:0] g1 = B1 ? INIT1[3:2] : INIT1[1:0];
	wire lut2_1 = A1 ? g1[1] : g1[0];
	assign S1 = lut4_1 ^ (INJECT1 ? 1'b0 : cout_0);
	assign COUT = (~lut4_1 & (INJECT1 ? 1'b0 : lut2_1)) | (lut4_1 & cout_0);
endmodule
